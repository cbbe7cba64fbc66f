//! Exit statuses, and the one place where an error becomes one.

use crate::confirm::Refusal;
use lifeboat_engine::{EngineError, ErrorClass, RepoError};

/// Exit status: something failed.
pub const FAILED: i32 = 1;
/// Exit status: bad arguments (as clap's usage errors), e.g. an invalid image name.
pub const USAGE: i32 = 2;
/// Exit status: the operation was refused (a safety check, or the operator said no);
/// nothing was written.
pub const REFUSED: i32 = 3;
/// Exit status: the image is damaged or incomplete.
pub const DAMAGED: i32 = 4;
/// Exit status: cancelled with Ctrl-C.
pub const CANCELLED: i32 = 130;

/// The exit status of an error class.
pub fn code(class: ErrorClass) -> i32 {
    match class {
        ErrorClass::Usage => USAGE,
        ErrorClass::Refused => REFUSED,
        ErrorClass::Damaged => DAMAGED,
        ErrorClass::Cancelled => CANCELLED,
        ErrorClass::Failed => FAILED,
    }
}

/// The class of an error the commands return: the engine's and the repository's own, a
/// [`Refusal`] of the operator, anything else a failure.
pub fn class_of(e: &anyhow::Error) -> ErrorClass {
    if e.is::<Refusal>() {
        ErrorClass::Refused
    } else if let Some(e) = e.downcast_ref::<EngineError>() {
        e.class()
    } else if let Some(e) = e.downcast_ref::<RepoError>() {
        ErrorClass::of_repo(e)
    } else {
        ErrorClass::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_engine::Aftermath;

    #[test]
    fn every_class_has_its_status() {
        let refusal = anyhow::Error::new(Refusal("no".into()));
        assert_eq!(code(class_of(&refusal)), REFUSED);
        let cancelled = anyhow::Error::new(EngineError::Cancelled(Aftermath::NothingWritten));
        assert_eq!(code(class_of(&cancelled)), CANCELLED);
        assert_eq!(code(class_of(&anyhow::anyhow!("other"))), FAILED);
        assert_eq!(code(ErrorClass::Usage), USAGE);
        assert_eq!(code(ErrorClass::Damaged), DAMAGED);
    }
}
