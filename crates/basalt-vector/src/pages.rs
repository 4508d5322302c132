//! Huge pages for the arrays a graph search reads at random.
//!
//! A search touches a few hundred vectors scattered over the whole vector array (150 MB for
//! 100k 384-dimension vectors): with 4 KiB pages nearly every one costs a TLB miss and a page
//! walk on top of its cache misses, with 2 MiB pages the array's translations fit the TLB.
//! Linux backs a mapping with huge pages where transparent huge pages are `always`, or
//! `madvise` (a common default) once the mapping asks, which is what this does.

/// Asks the kernel to back `buf`'s allocation (its whole capacity) with huge pages. Best
/// effort: nothing happens where the kernel refuses or the buffer is under one huge page.
pub fn advise_huge<T>(buf: &Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = buf.as_ptr() as usize;
        let end = start + buf.capacity() * std::mem::size_of::<T>();
        // madvise needs a page-aligned start; only whole huge pages can be huge anyway.
        let (from, to) = (start.next_multiple_of(HUGE), end / HUGE * HUGE);
        if to > from {
            // SAFETY: the range lies inside the buffer's live allocation, and MADV_HUGEPAGE
            // changes only how the kernel backs it, never its contents.
            unsafe { libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
}
