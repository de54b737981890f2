//! The one error type of the core.
//!
//! Every failure carries an [`ErrorKind`] whose [`ErrorKind::code`] is a stable
//! string that the TypeScript layer maps 1:1 to a gRPC status. The `message` is
//! written for the caller (what was wrong and what to do) and never contains
//! host paths; `detail` is for the operator's log only (the exact syscall and
//! its arguments) and must never be sent to a workspace.

use std::fmt;

use crate::idmap::IdMapRule;

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

/// Why an operation was refused or failed, for control flow and tests: code
/// matches on these, never on message text. Stable names (see
/// [`Reason::name`]) cross the binding as `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A path would leave the process's root (or the container's root).
    EscapesRoot,
    /// The operation would act in the daemon's own (the host's) mount namespace.
    HostMountNamespace,
    /// The process's mount namespace is neither the container init's nor one
    /// owned by a user namespace below the container's.
    ForeignMountNamespace,
    /// The mount there was not made by iwsd for this workspace.
    NotOurMount,
    /// Nothing is mounted at the target.
    NothingMounted,
    /// The process exited (or its PID was reused) during the operation.
    ProcessExited,
    /// The PID does not translate to a process inside the workspace.
    NoSuchProcess,
    /// The process exists but is not part of the workspace.
    OutsideWorkspace,
    /// An id map broke this rule.
    MapRule(IdMapRule),
    /// A path is, or passes through, a symlink or magic link.
    Symlink,
    /// A path (or a component of it) is not a directory.
    NotADirectory,
    /// A path does not exist.
    Missing,
    /// The target mount shares propagation with the host.
    SharedPropagation,
    /// The kernel lacks a feature iwsd needs.
    KernelLacks,
    /// The kernel refused the operation for a reason given in the message.
    KernelRefused,
    /// Idmapped mounts are not available here (kernel or filesystem).
    IdmapUnsupported,
    /// Malformed input.
    BadInput,
    /// A limit was hit.
    Limit,
    /// A name the daemon was placing kept being changed under it (a
    /// workspace racing the daemon on its own directory).
    Raced,
    /// The connection's caller was not identified at connect time.
    CallerUnknown,
    /// The caller's euid differs from the one it connected with.
    CredentialsChanged,
    /// WriteIDMapping: the target's user namespace is neither the caller's
    /// nor a child of it.
    UserNamespaceOutOfReach,
    /// WriteIDMapping: the caller does not own the target's user namespace.
    NotUserNamespaceOwner,
    /// WriteIDMapping: the map would give the caller ids the workspace does
    /// not delegate to it (only its ring user gets the ranges).
    MapNotDelegated,
    /// Mount*/Umount*: the target's mount namespace is owned by a user
    /// namespace the caller has no authority over.
    NotMountNamespaceOwner,
    /// Mount*: the caller may not write the target directory.
    TargetNotWritable,
    /// Umount*: the mount was made for another caller.
    NotMountOwner,
    /// PrepareForUserNS/Teardown: the caller is neither the container's
    /// root nor (where allowed) the user its init runs as.
    NotWorkspaceOwner,
    /// Mount*: the target mount is shared, so a mount there would be copied
    /// into other mount namespaces (uncounted by the limit).
    PropagatesToPeers,
    /// SetupPairVeths/MountNfs: the namespace is the host's network namespace.
    HostNetworkNamespace,
    /// SetupPairVeths: the target's network namespace is not owned by a user
    /// namespace made inside the workspace.
    ForeignNetworkNamespace,
    /// SetupPairVeths: the target is in the container's own network namespace.
    SameNetworkNamespace,
    /// SetupPairVeths: the caller has no authority over the target's network namespace.
    NotNetworkNamespaceOwner,
    /// SetupPairVeths: an interface of that name exists already.
    InterfaceExists,
    /// MountNfs: a mount option (or source) outside the allow-list.
    OptionNotAllowed,
    /// MountNfs: this kernel has no NFS client.
    NoNfsClient,
}

impl Reason {
    /// The stable name, e.g. `EscapesRoot` or `MapRule(host-root)`.
    pub fn name(self) -> String {
        match self {
            Reason::MapRule(rule) => format!("MapRule({})", rule.name()),
            other => format!("{other:?}"),
        }
    }
}

/// Something a syscall failure can be read from: its errno, when it has one.
pub trait Errnoish: fmt::Display {
    fn raw_errno(&self) -> Option<i32>;
}

impl Errnoish for rustix::io::Errno {
    fn raw_errno(&self) -> Option<i32> {
        Some(self.raw_os_error())
    }
}

impl Errnoish for nix::errno::Errno {
    fn raw_errno(&self) -> Option<i32> {
        Some(*self as i32)
    }
}

impl Errnoish for std::io::Error {
    fn raw_errno(&self) -> Option<i32> {
        self.raw_os_error()
    }
}

impl Errnoish for &str {
    fn raw_errno(&self) -> Option<i32> {
        None
    }
}

impl Errnoish for String {
    fn raw_errno(&self) -> Option<i32> {
        None
    }
}

/// A failure of a core operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    detail: Option<String>,
    reason: Option<Reason>,
    errno: Option<i32>,
}

impl Error {
    /// A failure whose message may be shown to the caller.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), detail: None, reason: None, errno: None }
    }

    /// A failure with a structured reason.
    pub fn because(kind: ErrorKind, reason: Reason, message: impl Into<String>) -> Self {
        Error::new(kind, message).with_reason(reason)
    }

    /// Attach the structured reason.
    pub fn with_reason(mut self, reason: Reason) -> Self {
        self.reason = Some(reason);
        self
    }

    /// Attach the errno of the syscall that failed.
    pub fn with_errno(mut self, errno: impl Errnoish) -> Self {
        self.errno = errno.raw_errno();
        self
    }

    /// Attach operator-only detail (syscall, arguments, errno).
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// An unexpected failure of a syscall: the caller sees a generic message,
    /// the operator's log gets the syscall and its arguments.
    pub fn internal(syscall: &str, errno: impl Errnoish) -> Self {
        let e = Error::new(ErrorKind::Internal, "internal error in iwsd; the daemon log has details")
            .with_detail(format!("{syscall}: {errno}"));
        Error { errno: errno.raw_errno(), ..e }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message).with_reason(Reason::BadInput)
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

    /// The structured reason, if one was given.
    pub fn reason(&self) -> Option<Reason> {
        self.reason
    }

    /// The errno of the syscall that failed, if one did.
    pub fn errno(&self) -> Option<i32> {
        self.errno
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
        assert_eq!(e.errno(), None);
    }

    #[test]
    fn internal_errors_keep_the_errno() {
        let e = Error::internal("openat", rustix::io::Errno::IO);
        assert_eq!(e.errno(), Some(libc::EIO));
    }

    #[test]
    fn reasons_have_stable_names() {
        assert_eq!(Reason::EscapesRoot.name(), "EscapesRoot");
        assert_eq!(Reason::MapRule(IdMapRule::HostRoot).name(), "MapRule(host-root)");
    }
}
