//! Two-way parallelism for the passes over a whole program: run two pieces of work at once,
//! and cut a program in two on a block boundary.
//!
//! The machine this library is built for has two cores, and every pass over a long program
//! (metering the content, leveling, measuring the mix) is a stream of blocks whose state can
//! be carried across a cut: the halves run on two threads and their results are joined.

/// Threads worth using for a split pass: the machine's available parallelism (1 when
/// unknown).
pub(crate) fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Runs `a` on this thread and `b` on a scoped thread at the same time and returns both
/// results. A panic in `b` is resumed on this thread after `a` finishes.
pub(crate) fn join<A, B>(a: impl FnOnce() -> A, b: impl FnOnce() -> B + Send) -> (A, B)
where
    B: Send,
{
    std::thread::scope(|s| {
        let second = s.spawn(b);
        let first = a();
        match second.join() {
            Ok(r) => (first, r),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Where to cut `0..total` for two threads: the largest multiple of `unit` at or below the
/// middle. `None` (run it whole) unless `threads >= 2`, `total >= min_total` and that cut
/// leaves both halves non-empty.
pub(crate) fn cut(total: u64, unit: u64, min_total: u64, threads: usize) -> Option<u64> {
    let c = total / 2 / unit.max(1) * unit.max(1);
    (threads >= 2 && total >= min_total && c > 0).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_falls_on_a_unit_at_or_below_the_middle() {
        assert_eq!(cut(1000, 30, 0, 2), Some(480));
        assert_eq!(cut(1000, 30, 0, 1), None);
        assert_eq!(cut(1000, 30, 1001, 2), None);
        assert_eq!(cut(50, 30, 0, 2), None); // no whole unit in the first half
        assert_eq!(cut(60, 30, 0, 4), Some(30));
    }

    #[test]
    fn a_panic_on_the_second_thread_reaches_the_caller() {
        let r = std::panic::catch_unwind(|| join(|| 1, || -> i32 { panic!("second") }));
        assert!(r.is_err());
    }
}
