//! Properties of `Number` over random values: `order_key` sorts exactly as `Ord` does and
//! is prefix-free; `Display` round-trips through `parse`; arithmetic agrees with ordering.

use basalt_dynamodb_expr::Number;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A random valid number: up to 38 digits, exponents across DynamoDB's whole range, with
/// spellings that must normalize (leading zeros, trailing zeros, signs, `e`/`E`).
fn random_number(rng: &mut StdRng) -> (String, Number) {
    let digits: usize = rng.gen_range(1..=38);
    let mut mantissa: String = (0..digits)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect();
    if rng.gen_bool(0.2) {
        mantissa = format!("00{mantissa}");
    }
    if rng.gen_bool(0.2) {
        mantissa.push_str("000");
    }
    let exp: i32 = match rng.gen_range(0..3) {
        0 => rng.gen_range(-3..4),
        1 => rng.gen_range(-20..20),
        _ => rng.gen_range(-90..85),
    };
    let sign = ["", "-", "+"][rng.gen_range(0..3)];
    let e = if rng.gen_bool(0.5) { "e" } else { "E" };
    let point = rng.gen_range(0..=mantissa.len());
    let text = format!(
        "{sign}{}.{}{e}{exp}",
        &mantissa[..point],
        &mantissa[point..]
    );
    let n = Number::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
    (text, n)
}

#[test]
fn order_key_matches_ord() {
    let mut rng = StdRng::seed_from_u64(0xD1A0);
    let nums: Vec<Number> = (0..4000).map(|_| random_number(&mut rng).1).collect();
    for w in nums.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        assert_eq!(a.cmp(b), a.order_key().cmp(&b.order_key()), "{a} vs {b}");
    }
    let mut by_ord = nums.clone();
    by_ord.sort();
    let mut by_key = nums.clone();
    by_key.sort_by_key(Number::order_key);
    assert_eq!(by_ord, by_key);
    // Prefix-free: no key starts with a different key.
    let mut keys: Vec<String> = nums.iter().map(Number::order_key).collect();
    keys.sort();
    keys.dedup();
    for w in keys.windows(2) {
        assert!(!w[1].starts_with(&w[0]), "{} is a prefix of {}", w[0], w[1]);
    }
}

#[test]
fn display_round_trips() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..4000 {
        let (text, n) = random_number(&mut rng);
        let shown = n.to_string();
        assert_eq!(Number::parse(&shown).unwrap(), n, "{text} -> {shown}");
        assert_eq!(Number::parse(&shown).unwrap().to_string(), shown);
        assert!(!shown.contains(['e', 'E', '+']), "{shown}");
        assert!(!(shown.contains('.') && shown.ends_with('0')), "{shown}");
        let f: f64 = text.parse().unwrap();
        let g = n.to_f64();
        assert!((f - g).abs() <= f.abs() * 1e-12, "{text}: {f} vs {g}");
    }
}

#[test]
fn arithmetic_agrees_with_order() {
    let mut rng = StdRng::seed_from_u64(42);
    let small = |rng: &mut StdRng| Number::from_i64(rng.gen_range(-1_000_000..1_000_000));
    for _ in 0..2000 {
        let (_, a) = random_number(&mut rng);
        let b = small(&mut rng);
        let Ok(sum) = a.checked_add(&b) else { continue };
        // a + b - b == a exactly, and the sum moves in b's direction.
        if let Ok(back) = sum.checked_sub(&b) {
            assert_eq!(back, a, "{a} + {b} - {b}");
        }
        match b.cmp(&Number::zero()) {
            std::cmp::Ordering::Greater => assert!(sum >= a),
            std::cmp::Ordering::Less => assert!(sum <= a),
            std::cmp::Ordering::Equal => assert_eq!(sum, a),
        }
        let (x, y) = (
            rng.gen_range(-1_000_000_000i64..1_000_000_000),
            rng.gen_range(-1_000_000_000i64..1_000_000_000),
        );
        let s = Number::from_i64(x)
            .checked_add(&Number::from_i64(y))
            .unwrap();
        assert_eq!(s.to_i64(), Some(x + y));
        assert_eq!(Number::from_i64(x).cmp(&Number::from_i64(y)), x.cmp(&y));
    }
}
