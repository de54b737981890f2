//! The one error type of the core.
//!
//! Every failure carries an [`ErrorKind`] whose [`ErrorKind::code`] is a stable
//! string that the TypeScript layer maps 1:1 to a gRPC status. The `message` is
//! written for the caller (what was wrong and what to do) and never contains
//! host paths; `detail` is for the operator's log only (the exact syscall and
//! its arguments) and must never be sent to a workspace.

use std::fmt;

/// The stable classes of failure; one per gRPC status the service can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request itself is malformed or violates policy.
    InvalidArgument,
    /// The request names something outside the workspace.
    PermissionDenied,
    /// The named process (or mount) does not exist.
    NotFound,
    /// The kernel lacks a feature, or the target is in the wrong state.
    FailedPrecondition,
    /// A limit was hit.
    ResourceExhausted,
    /// A transient condition; retrying may help.
    Unavailable,
    /// A bug or an unexpected kernel error.
    Internal,
}

impl ErrorKind {
    /// All kinds, in a fixed order (used by tests and documentation).
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::InvalidArgument,
        ErrorKind::PermissionDenied,
        ErrorKind::NotFound,
        ErrorKind::FailedPrecondition,
        ErrorKind::ResourceExhausted,
        ErrorKind::Unavailable,
        ErrorKind::Internal,
    ];

    /// The stable code string, identical to the gRPC status name.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "INVALID_ARGUMENT",
            ErrorKind::PermissionDenied => "PERMISSION_DENIED",
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::FailedPrecondition => "FAILED_PRECONDITION",
            ErrorKind::ResourceExhausted => "RESOURCE_EXHAUSTED",
            ErrorKind::Unavailable => "UNAVAILABLE",
            ErrorKind::Internal => "INTERNAL",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A failure of a core operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    detail: Option<String>,
}

impl Error {
    /// A failure whose message may be shown to the caller.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), detail: None }
    }

    /// Attach operator-only detail (syscall, arguments, errno).
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// An unexpected failure of a syscall: the caller sees a generic message,
    /// the operator's log gets the syscall and its arguments.
    pub fn internal(syscall: &str, errno: impl fmt::Display) -> Self {
        Error::new(ErrorKind::Internal, "internal error in iwsd; the daemon log has details")
            .with_detail(format!("{syscall}: {errno}"))
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The caller-facing message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Operator-only detail, if any.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_grpc_names() {
        let codes: std::collections::HashSet<_> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
        assert_eq!(ErrorKind::PermissionDenied.code(), "PERMISSION_DENIED");
    }

    #[test]
    fn internal_errors_hide_detail_from_message() {
        let e = Error::internal("openat(/proc/123/uid_map)", "EIO");
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert!(!e.message().contains("/proc"));
        assert_eq!(e.detail(), Some("openat(/proc/123/uid_map): EIO"));
    }
}
