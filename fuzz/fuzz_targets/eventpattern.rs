#![no_main]
//! Event patterns, SNS filter policies and the rule index on arbitrary input: the bytes are a
//! pattern, then (after the first NUL) an event. Nothing may panic, whatever either holds.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (pattern, event) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"{}"[..]),
    };
    let (Ok(pattern), Ok(event)) = (std::str::from_utf8(pattern), std::str::from_utf8(event)) else {
        return;
    };
    let value: Option<serde_json::Value> = serde_json::from_str(event).ok();
    if let Ok(p) = basalt_eventpattern::Pattern::parse(pattern) {
        let direct = p.matches_str(event).ok();
        if let Some(v) = &value {
            let mut m = basalt_eventpattern::Matcher::new();
            m.insert(0u8, &p);
            // The index must never lose a match the pattern itself finds.
            assert_eq!(m.matches(v) == vec![0], direct == Some(true));
        }
    }
    if let (Ok(f), Some(v)) = (basalt_eventpattern::FilterPolicy::parse(pattern), &value) {
        f.matches(v);
    }
});
