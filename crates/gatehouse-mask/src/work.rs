//! A count of the bytes masking walks, so tests can prove that the work is
//! linear in the input (wall-clock time is too noisy to assert on, and an
//! instruction count is not available in a unit test).
//!
//! The count exists only in this crate's own tests and under the
//! `work-counter` feature (for other crates' tests); otherwise
//! [`charge`] is an empty inline function and costs nothing.

#[cfg(any(test, feature = "work-counter"))]
mod imp {
    use std::cell::Cell;

    thread_local! {
        static UNITS: Cell<u64> = const { Cell::new(0) };
    }

    #[inline]
    pub fn charge(n: usize) {
        UNITS.with(|u| u.set(u.get() + n as u64));
    }

    /// The bytes counted on this thread since the last call, and a reset.
    pub fn take() -> u64 {
        UNITS.with(|u| u.replace(0))
    }
}

#[cfg(any(test, feature = "work-counter"))]
pub use imp::take;

/// Counts `n` bytes walked (a loop over a value, or a regular expression
/// search over `n` bytes of one).
#[inline(always)]
pub fn charge(n: usize) {
    #[cfg(any(test, feature = "work-counter"))]
    imp::charge(n);
    #[cfg(not(any(test, feature = "work-counter")))]
    let _ = n;
}
