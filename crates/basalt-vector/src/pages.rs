//! Huge pages for the arrays a graph search reads at random.
//!
//! A search touches a few hundred vectors scattered over the whole vector array (150 MB for
//! 100k 384-dimension vectors): with 4 KiB pages nearly every one costs a TLB miss and a page
//! walk on top of its cache misses, with 2 MiB pages the array's translations fit the TLB.
//! Linux backs a mapping with huge pages where transparent huge pages are `always`, or
//! `madvise` (a common default) once the mapping asks, which is what this does.

/// Makes room for `additional` more elements as `Vec::reserve` does (at least doubling), in
/// an allocation that asks for huge pages *before* anything is written to it: a `realloc`
/// copies the old contents first, and the pages that copy touches would be faulted in at
/// 4 KiB (measured: 51 of 194 MB huge after a `reserve` then `madvise`).
pub fn reserve_huge<T: Copy>(buf: &mut Vec<T>, additional: usize) {
    if buf.capacity() - buf.len() >= additional {
        return;
    }
    let cap = (buf.len() + additional).max(2 * buf.capacity());
    let mut grown = Vec::with_capacity(cap);
    advise_huge(&grown);
    grown.extend_from_slice(buf);
    *buf = grown;
}

/// Asks the kernel to back `buf`'s allocation (its whole capacity) with huge pages. Best
/// effort: nothing happens where the kernel refuses or the buffer is under one huge page.
fn advise_huge<T>(buf: &Vec<T>) {
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

#[cfg(test)]
mod tests {
    #[test]
    fn reserving_keeps_the_contents_and_at_least_doubles() {
        let mut v: Vec<u32> = (0..1000).collect();
        v.shrink_to_fit();
        let cap = v.capacity();
        super::reserve_huge(&mut v, 1);
        assert!(v.capacity() >= 2 * cap);
        assert!(v.iter().copied().eq(0..1000));
        // Enough room already: nothing moves.
        let at = v.as_ptr();
        super::reserve_huge(&mut v, 10);
        assert_eq!(v.as_ptr(), at);
        // Large enough for huge pages (8 MiB): still the same contents.
        let mut big: Vec<f32> = Vec::new();
        for i in 0..(2 << 20) {
            super::reserve_huge(&mut big, 1);
            big.push(i as f32);
        }
        assert!(big.iter().enumerate().all(|(i, &x)| x == i as f32));
    }
}
