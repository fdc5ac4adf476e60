package acc;


/** Prints the CRC-32 of each argument (or of a greeting), through a second class. */
public final class Main {
    public static void main(String[] args) {
        String[] inputs = args.length > 0 ? args : new String[] {"layerscope"};
        for (String s : inputs) {
            System.out.println(Checksum.line(s));
        }
    }
}
