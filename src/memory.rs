//! Process-wide memory settings applied once at start-up.
//!
//! Transparent huge pages are turned off for the worker unless the operator
//! chose through mimalloc's own `MIMALLOC_ALLOW_THP`. A MongoDB snapshot
//! allocates and frees tens of megabytes per chunk; with THP, pages the
//! allocator has returned come back as 2 MB huge pages that the kernel
//! zeroes whole on the next touch. `perf` put that zeroing (`clear_page_erms`
//! under `do_huge_pmd_anonymous_page`) at ~20 % of a snapshot's CPU; with THP
//! off it is gone (docs/benchmarks.md). Many databases, MongoDB among them,
//! advise the same.

/// Turns transparent huge pages off for this process (and what it forks),
/// unless `MIMALLOC_ALLOW_THP` is set. Returns whether THP is now off.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn disable_transparent_huge_pages() -> bool {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return false;
    }
    // SAFETY: PR_SET_THP_DISABLE takes plain integers, touches no memory of
    // ours, and only sets a flag on this process's address space.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc != 0 {
        // Kernels before 3.15 lack it; the worker runs the same, only slower.
        eprintln!(
            "connectd: could not turn transparent huge pages off ({}); continuing",
            std::io::Error::last_os_error()
        );
    }
    rc == 0
}

#[cfg(not(target_os = "linux"))]
pub fn disable_transparent_huge_pages() -> bool {
    false
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_kernel_reports_thp_off_for_the_process() {
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
            // The operator's choice wins; nothing to check in this run.
            assert!(!super::disable_transparent_huge_pages());
            return;
        }
        assert!(super::disable_transparent_huge_pages());
        let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
        let line = status
            .lines()
            .find(|l| l.starts_with("THP_enabled:"))
            .expect("THP_enabled in /proc/self/status (Linux >= 5.0)");
        assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
    }
}
