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
    pub fn input(what: &str, msg: impl Into<String>) -> Self {
        Error::Input {
            what: what.to_string(),
            msg: msg.into(),
        }
    }
}
