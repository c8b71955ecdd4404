//! The signer's error type: a kind callers can match on and a sentence for people.

use std::fmt;

/// What went wrong, for callers that branch on the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A policy could not be built from the given inputs (missing expiry, bad CIDR, ...).
    InvalidPolicy,
    /// A key could not be loaded: unreadable, malformed, encrypted, wrong type or size.
    InvalidKey,
    /// A key pair id or key ring setting is unusable.
    InvalidKeyRing,
    /// A URL handed to the signer cannot carry a signature.
    InvalidUrl,
    /// Text that should be CloudFront base64 is not.
    InvalidEncoding,
    /// The crypto library failed while signing or generating.
    Crypto,
    /// The key store holding a remote key cannot be reached or cannot use
    /// the key now (network down, token removed, not yet connected).
    Unavailable,
    /// The key store refused for rate (a request quota, a busy device).
    Throttled,
}

/// An error from the signer core. The message names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// An error of `kind`; key stores outside this crate report with it.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn policy(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidPolicy, message)
    }

    pub(crate) fn key(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidKey, message)
    }

    pub(crate) fn crypto(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Crypto, message)
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Prefixes the message with where the problem was found, e.g. which key.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
