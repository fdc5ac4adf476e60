//! The core's typed errors. Each renders as one line naming what was wrong.

/// Errors from loading and analysing images.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file, archive or layer that cannot be read as an image.
    #[error("{what}: {msg}")]
    Input { what: String, msg: String },
    /// The Docker engine could not be reached or refused a request.
    #[error("{0}")]
    Engine(String),
    /// Bad arguments or configuration.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// Messages quote names and bytes from the input (member paths, tar
    /// header fields): their control characters are escaped, so the error
    /// stays one line and cannot drive the terminal.
    pub fn input(what: &str, msg: impl Into<String>) -> Self {
        Error::Input {
            what: one_line(what),
            msg: one_line(&msg.into()),
        }
    }
}

/// `s` with control characters escaped (`\n`, `\u{1b}`): a message that
/// quotes input back stays one line and cannot drive the terminal.
pub(crate) fn one_line(s: &str) -> String {
    if !s.contains(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn input_errors_are_one_line_without_control_characters() {
        let e = Error::input("a\nb.tar", "bad name \"x\u{1b}[31my\r\"");
        assert_eq!(e.to_string(), r#"a\nb.tar: bad name "x\u{1b}[31my\r""#);
    }
}
