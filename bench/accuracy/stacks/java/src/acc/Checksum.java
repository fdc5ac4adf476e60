package acc;

import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32;

final class Checksum {
    private Checksum() {}

    static String line(String s) {
        CRC32 crc = new CRC32();
        crc.update(s.getBytes(StandardCharsets.UTF_8));
        return String.format("%08x  %s", crc.getValue(), s);
    }
}
