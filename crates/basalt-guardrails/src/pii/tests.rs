//! Recognizer tests: for each type, values it must find and look-alikes it must leave.
//! Every value here is synthetic (test card numbers, documentation examples, made-up people).

use super::*;
use crate::config::{PiiEntity, RegexConfig};

fn entity(kind: PiiType, action: PiiAction) -> PiiEntity {
    PiiEntity {
        kind,
        action,
        input_action: action,
        output_action: action,
        input_enabled: true,
        output_enabled: true,
    }
}

fn all_filter() -> PiiFilter {
    PiiFilter::new(&SensitiveInformationPolicy {
        pii_entities: PiiType::ALL
            .iter()
            .map(|t| entity(*t, PiiAction::Anonymize))
            .collect(),
        regexes: Vec::new(),
    })
    .unwrap()
}

/// (type, matched text) of every hit with all types enabled.
fn found(text: &str) -> Vec<(&'static str, String)> {
    static F: OnceLock<PiiFilter> = OnceLock::new();
    F.get_or_init(all_filter)
        .find(text, Source::Input)
        .into_iter()
        .map(|h| {
            let t = match h.kind {
                PiiKind::Entity(t) => t.as_str(),
                PiiKind::Regex(_) => "REGEX",
            };
            (t, h.matched)
        })
        .collect()
}

fn assert_finds(text: &str, kind: &str, value: &str) {
    let hits = found(text);
    assert!(
        hits.iter().any(|(t, m)| *t == kind && m == value),
        "expected {kind} {value:?} in {text:?}, got {hits:?}"
    );
}

fn assert_no(text: &str, kind: &str) {
    let hits = found(text);
    assert!(
        !hits.iter().any(|(t, _)| *t == kind),
        "expected no {kind} in {text:?}, got {hits:?}"
    );
}

#[test]
fn cards() {
    assert_finds(
        "Card: 4111 1111 1111 1111, thanks",
        "CREDIT_DEBIT_CARD_NUMBER",
        "4111 1111 1111 1111",
    );
    assert_finds(
        "pay with 5555-5555-5555-4444",
        "CREDIT_DEBIT_CARD_NUMBER",
        "5555-5555-5555-4444",
    );
    assert_finds(
        "amex 3782 822463 10005.",
        "CREDIT_DEBIT_CARD_NUMBER",
        "3782 822463 10005",
    );
    assert_finds(
        "6011111111111117",
        "CREDIT_DEBIT_CARD_NUMBER",
        "6011111111111117",
    );
    assert_finds(
        "4111 1111 1111 1111 2025 was the year",
        "CREDIT_DEBIT_CARD_NUMBER",
        "4111 1111 1111 1111",
    );
    assert_no(
        "order 4111 1111 1111 1112 shipped",
        "CREDIT_DEBIT_CARD_NUMBER",
    );
    assert_no("id 1234567812345670", "CREDIT_DEBIT_CARD_NUMBER");
    assert_no("ref 41111111111111110000", "CREDIT_DEBIT_CARD_NUMBER");
    assert_no("4111 1111-1111 1111", "CREDIT_DEBIT_CARD_NUMBER");
}

#[test]
fn cvv_and_expiry() {
    let t = "Card 4111 1111 1111 1111 exp 08/27, CVV: 123";
    assert_finds(t, "CREDIT_DEBIT_CARD_EXPIRY", "08/27");
    assert_finds(t, "CREDIT_DEBIT_CARD_CVV", "123");
    assert_finds("valid thru 12/2029", "CREDIT_DEBIT_CARD_EXPIRY", "12/2029");
    assert_finds("the security code is 7890", "CREDIT_DEBIT_CARD_CVV", "7890");
    assert_no("we met on 12/25/2023 at 10", "CREDIT_DEBIT_CARD_EXPIRY");
    assert_no("a ratio of 3/4 and 08/27 alone", "CREDIT_DEBIT_CARD_EXPIRY");
    assert_no("I ate 123 apples", "CREDIT_DEBIT_CARD_CVV");
    assert_no("CVV: 12345", "CREDIT_DEBIT_CARD_CVV");
}

#[test]
fn ssn_and_itin() {
    assert_finds(
        "SSN 536-22-8756.",
        "US_SOCIAL_SECURITY_NUMBER",
        "536-22-8756",
    );
    assert_finds(
        "my social security number is 536228756",
        "US_SOCIAL_SECURITY_NUMBER",
        "536228756",
    );
    assert_finds(
        "ITIN: 912-70-1234",
        "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER",
        "912-70-1234",
    );
    for bad in [
        "000-12-3456",
        "666-12-3456",
        "123-00-4567",
        "123-45-0000",
        "912-34-5678",
    ] {
        assert_no(&format!("SSN {bad}"), "US_SOCIAL_SECURITY_NUMBER");
    }
    assert_no("invoice 536228756", "US_SOCIAL_SECURITY_NUMBER");
    assert_no("536-22 8756", "US_SOCIAL_SECURITY_NUMBER");
    assert_no("tracking 1536-22-87560", "US_SOCIAL_SECURITY_NUMBER");
    assert_no(
        "ITIN 912-34-5678",
        "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER",
    );
}

#[test]
fn bank_numbers() {
    assert_finds(
        "IBAN DE89 3704 0044 0532 0130 00 please",
        "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
        "DE89 3704 0044 0532 0130 00",
    );
    assert_finds(
        "GB82WEST12345698765432",
        "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
        "GB82WEST12345698765432",
    );
    assert_no(
        "DE89 3704 0044 0532 0130 01",
        "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
    );
    assert_no(
        "XX89 3704 0044 0532 0130 00",
        "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
    );
    assert_finds("SWIFT: DEUTDEFF", "SWIFT_CODE", "DEUTDEFF");
    assert_finds("send via HSBCGB2L today", "SWIFT_CODE", "HSBCGB2L");
    assert_finds("BIC code NWBKGB2LXXX", "SWIFT_CODE", "NWBKGB2LXXX");
    assert_no("OUR BUSINESS PLAN", "SWIFT_CODE");
    assert_no("the swift messages", "SWIFT_CODE");
    assert_finds(
        "routing number 021000021",
        "US_BANK_ROUTING_NUMBER",
        "021000021",
    );
    assert_no("routing number 021000022", "US_BANK_ROUTING_NUMBER");
    assert_no("order 021000021 shipped", "US_BANK_ROUTING_NUMBER");
    assert_finds(
        "my checking account number is 000123456789",
        "US_BANK_ACCOUNT_NUMBER",
        "000123456789",
    );
    assert_finds(
        "routing: 011401533, account: 87654321",
        "US_BANK_ACCOUNT_NUMBER",
        "87654321",
    );
    assert_finds(
        "routing: 011401533, account: 87654321",
        "US_BANK_ROUTING_NUMBER",
        "011401533",
    );
    assert_no("I have 12345678 reasons", "US_BANK_ACCOUNT_NUMBER");
    assert_no("account 1234567", "US_BANK_ACCOUNT_NUMBER");
}

#[test]
fn email_url_ip_mac() {
    assert_finds(
        "mail jane.doe+test@example.co.uk.",
        "EMAIL",
        "jane.doe+test@example.co.uk",
    );
    assert_no("not an email: a@b, x@.com, .a@example.com", "EMAIL");
    assert_no("user@@example.com", "EMAIL");
    assert_finds(
        "see https://example.com/path?q=1).",
        "URL",
        "https://example.com/path?q=1",
    );
    assert_finds("visit www.example.org today", "URL", "www.example.org");
    assert_no("the file example.txt", "URL");
    assert_finds("server 192.168.1.20 is down", "IP_ADDRESS", "192.168.1.20");
    assert_finds(
        "ping 2001:db8::8a2e:370:7334",
        "IP_ADDRESS",
        "2001:db8::8a2e:370:7334",
    );
    assert_finds(
        "ip fe80::1ff:fe23:4567:890a.",
        "IP_ADDRESS",
        "fe80::1ff:fe23:4567:890a",
    );
    assert_no("version 1.2.3.4 released", "IP_ADDRESS");
    assert_no("v10.0.19041.1", "IP_ADDRESS");
    assert_no("999.1.1.1 and 1.2.3 and 1.2.3.4.5", "IP_ADDRESS");
    assert_no("at 10:30:45 use std::vec and dead::beef", "IP_ADDRESS");
    assert_finds("MAC 00:1A:2B:3C:4D:5E.", "MAC_ADDRESS", "00:1A:2B:3C:4D:5E");
    assert_finds("mac 00-1a-2b-3c-4d-5e", "MAC_ADDRESS", "00-1a-2b-3c-4d-5e");
    assert_finds("cisco 001a.2b3c.4d5e", "MAC_ADDRESS", "001a.2b3c.4d5e");
    assert_no("00:1A:2B:3C:4D", "MAC_ADDRESS");
    assert_no("00:1A:2B:3C:4D:5E:6F", "MAC_ADDRESS");
}

#[test]
fn phones() {
    for (t, v) in [
        ("call (415) 555-0132 now", "(415) 555-0132"),
        ("415-555-0132", "415-555-0132"),
        ("415.555.0132", "415.555.0132"),
        ("+1 415 555 0132", "+1 415 555 0132"),
        ("1-800-555-0199", "1-800-555-0199"),
        ("London +44 20 7946 0018", "+44 20 7946 0018"),
        ("mobile 07700 900123", "07700 900123"),
        ("phone: 4155550132", "4155550132"),
        ("+33 1 23 45 67 89", "+33 1 23 45 67 89"),
    ] {
        assert_finds(t, "PHONE", v);
    }
    for t in [
        "on 2023-10-15 and 15/10/2023",
        "order 4155550132 shipped",
        "123-456-7890",
        "pi is 3.14159265358979",
        "build 20231015.1",
    ] {
        assert_no(t, "PHONE");
    }
}

#[test]
fn aws_keys() {
    let t = "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    assert_finds(t, "AWS_ACCESS_KEY", "AKIAIOSFODNN7EXAMPLE");
    assert_finds(
        t,
        "AWS_SECRET_KEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    );
    assert_no("AKIAIOSFODNN7EXAMPL", "AWS_ACCESS_KEY");
    assert_no("XAKIAIOSFODNN7EXAMPLE", "AWS_ACCESS_KEY");
    assert_no(
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
        "AWS_SECRET_KEY",
    );
    assert_no(
        "token wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_SECRET_KEY",
    );
}

#[test]
fn credentials() {
    assert_finds("password: hunter2", "PASSWORD", "hunter2");
    assert_finds("My password is Tr0ub4dor&3.", "PASSWORD", "Tr0ub4dor&3");
    assert_finds("pwd=\"s3cr3t!\"", "PASSWORD", "s3cr3t!");
    assert_no("my password is secure", "PASSWORD");
    assert_no("reset your password using the link", "PASSWORD");
    assert_finds("username: jdoe42", "USERNAME", "jdoe42");
    assert_finds("my user name is jane_doe.", "USERNAME", "jane_doe");
    assert_no("username is required", "USERNAME");
    assert_no("choose a username", "USERNAME");
    assert_finds("my PIN is 4821", "PIN", "4821");
    assert_finds("pin code: 004821", "PIN", "004821");
    assert_no("pin 3 of the header", "PIN");
    assert_no("a spin 1234", "PIN");
}

#[test]
fn uk_and_canada() {
    assert_finds(
        "NHS number 943 476 5919",
        "UK_NATIONAL_HEALTH_SERVICE_NUMBER",
        "943 476 5919",
    );
    assert_no(
        "NHS number 943 476 5918",
        "UK_NATIONAL_HEALTH_SERVICE_NUMBER",
    );
    assert_no("ticket 943 476 5919", "UK_NATIONAL_HEALTH_SERVICE_NUMBER");
    assert_finds(
        "NI number AB 12 34 56 C",
        "UK_NATIONAL_INSURANCE_NUMBER",
        "AB 12 34 56 C",
    );
    assert_finds("JG103759A", "UK_NATIONAL_INSURANCE_NUMBER", "JG103759A");
    assert_no("GB123456A", "UK_NATIONAL_INSURANCE_NUMBER");
    assert_no("DA123456A", "UK_NATIONAL_INSURANCE_NUMBER");
    assert_finds(
        "my UTR is 12345 67890",
        "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER",
        "12345 67890",
    );
    assert_no("order 12345 67890", "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER");
    assert_finds(
        "SIN 130 692 544",
        "CA_SOCIAL_INSURANCE_NUMBER",
        "130 692 544",
    );
    assert_finds("130-692-544", "CA_SOCIAL_INSURANCE_NUMBER", "130-692-544");
    assert_no("130 692 545", "CA_SOCIAL_INSURANCE_NUMBER");
    assert_no(
        "social insurance number 846 454 286",
        "CA_SOCIAL_INSURANCE_NUMBER",
    );
    assert_no("the sin of 130692544", "CA_SOCIAL_INSURANCE_NUMBER");
    assert_finds(
        "OHIP number 1234-567-890-AB",
        "CA_HEALTH_NUMBER",
        "1234-567-890-AB",
    );
    assert_no("ref 1234-567-890", "CA_HEALTH_NUMBER");
}

#[test]
fn ids_and_vehicles() {
    assert_finds(
        "passport number 123456789",
        "US_PASSPORT_NUMBER",
        "123456789",
    );
    assert_finds("Passport: A12345678", "US_PASSPORT_NUMBER", "A12345678");
    assert_no("serial 123456789", "US_PASSPORT_NUMBER");
    assert_finds("driver's license number D1234567", "DRIVER_ID", "D1234567");
    assert_finds("DL: S530-4721-8855", "DRIVER_ID", "S530-4721-8855");
    assert_no("my driver's license expired", "DRIVER_ID");
    assert_finds("license plate 7ABC123", "LICENSE_PLATE", "7ABC123");
    assert_finds("number plate AB12 CDE", "LICENSE_PLATE", "AB12 CDE");
    assert_no("a dinner plate 3", "LICENSE_PLATE");
    assert_finds(
        "VIN 1HGCM82633A004352",
        "VEHICLE_IDENTIFICATION_NUMBER",
        "1HGCM82633A004352",
    );
    assert_finds(
        "car 1M8GDM9AXKP042788 sold",
        "VEHICLE_IDENTIFICATION_NUMBER",
        "1M8GDM9AXKP042788",
    );
    assert_no(
        "car 1HGCM82643A004352 sold",
        "VEHICLE_IDENTIFICATION_NUMBER",
    );
    assert_no("12345678901234567", "VEHICLE_IDENTIFICATION_NUMBER");
}

#[test]
fn ages() {
    assert_finds("I am 34 years old", "AGE", "34 years old");
    assert_finds("a 34-year-old patient", "AGE", "34-year-old");
    assert_finds("Age: 52", "AGE", "52");
    assert_finds("she is 29.", "AGE", "29");
    assert_finds("She is 45 years of age.", "AGE", "45");
    assert_no("30 years of experience", "AGE");
    assert_no("5 years ago on page 34", "AGE");
    assert_no("aged 500 years", "AGE");
}

#[test]
fn addresses() {
    assert_finds(
        "ship to 123 Main St, Springfield, IL 62704 please",
        "ADDRESS",
        "123 Main St, Springfield, IL 62704",
    );
    assert_finds(
        "at 1600 Pennsylvania Avenue NW, Washington, DC 20500",
        "ADDRESS",
        "1600 Pennsylvania Avenue NW, Washington, DC 20500",
    );
    assert_finds("42 Elm Road Apt 5B", "ADDRESS", "42 Elm Road Apt 5B");
    assert_finds(
        "10 Downing Street, London SW1A 2AA",
        "ADDRESS",
        "10 Downing Street, London SW1A 2AA",
    );
    assert_finds("postcode EC1A 1BB", "ADDRESS", "EC1A 1BB");
    assert_finds("I live at 9 Oak Lane.", "ADDRESS", "9 Oak Lane");
    assert_finds("I live at 9 Oak St. now", "ADDRESS", "9 Oak St.");
    assert_no("we sold 300 units on Main street", "ADDRESS");
    assert_no("in 2024 The Street was a hit", "ADDRESS");
}

#[test]
fn names() {
    assert_finds(
        "Hello, my name is Maria Garcia and I need help",
        "NAME",
        "Maria Garcia",
    );
    assert_finds("Please ask Dr. Emily Chen.", "NAME", "Emily Chen");
    assert_finds("I'm Sarah, from support", "NAME", "Sarah");
    assert_finds("Name: Zbigniew Kowalski", "NAME", "Zbigniew Kowalski");
    assert_finds("Best regards,\nThomas O'Brien", "NAME", "Thomas O'Brien");
    assert_finds("Dear Priya,", "NAME", "Priya");
    assert_finds("Then Michael Johnson called.", "NAME", "Michael Johnson");
    assert_finds("Ask José García", "NAME", "José García");
    assert_no("The Golden Gate Bridge in San Francisco", "NAME");
    assert_no("I'm Happy to help. Monday Morning Meeting", "NAME");
    assert_no("File name: Report", "NAME");
    assert_no("Hello World", "NAME");
    assert_no("Dear Sir or Madam,", "NAME");
    assert_no("Welcome to Amazon Web Services", "NAME");
    assert_no(
        "Fly from Logan Airport to the Madison Square Garden show",
        "NAME",
    );
}

#[test]
fn overlaps_prefer_longer_then_more_specific() {
    let hits = found("email jane@example.com at https://jane@example.com/x");
    assert_eq!(hits[0], ("EMAIL", "jane@example.com".to_owned()));
    assert_eq!(hits[1].0, "URL");
    assert_eq!(hits.len(), 2);
    let hits = found("SSN: 536-22-8756 phone 415-555-0132");
    let kinds: Vec<&str> = hits.iter().map(|h| h.0).collect();
    assert_eq!(kinds, ["US_SOCIAL_SECURITY_NUMBER", "PHONE"]);
}

#[test]
fn custom_regexes_actions_and_directions() {
    let mut email = entity(PiiType::Email, PiiAction::Block);
    email.output_enabled = false;
    let mut phone = entity(PiiType::Phone, PiiAction::Anonymize);
    phone.input_action = PiiAction::None;
    let f = PiiFilter::new(&SensitiveInformationPolicy {
        pii_entities: vec![email, phone],
        regexes: vec![RegexConfig {
            name: "ticket".into(),
            description: None,
            pattern: r"TCK-\d{6}".into(),
            action: PiiAction::Anonymize,
            input_action: PiiAction::Anonymize,
            output_action: PiiAction::Block,
            input_enabled: true,
            output_enabled: true,
        }],
    })
    .unwrap();
    let text = "TCK-123456 from a@example.com, call 415-555-0132";
    let input = f.find(text, Source::Input);
    assert_eq!(input.len(), 3);
    assert_eq!(input[0].kind, PiiKind::Regex(0));
    assert_eq!(input[0].action, PiiAction::Anonymize);
    assert_eq!(input[1].kind, PiiKind::Entity(PiiType::Email));
    assert_eq!(input[1].action, PiiAction::Block);
    assert_eq!(input[2].action, PiiAction::None);
    let output = f.find(text, Source::Output);
    let kinds: Vec<&PiiKind> = output.iter().map(|h| &h.kind).collect();
    assert_eq!(
        kinds,
        [&PiiKind::Regex(0), &PiiKind::Entity(PiiType::Phone)]
    );
    assert_eq!(output[0].action, PiiAction::Block);
    assert_eq!(output[1].action, PiiAction::Anonymize);
}

#[test]
fn bad_regex_is_a_config_error() {
    let r = PiiFilter::new(&SensitiveInformationPolicy {
        pii_entities: Vec::new(),
        regexes: vec![RegexConfig {
            name: "bad".into(),
            description: None,
            pattern: "(".into(),
            action: PiiAction::Block,
            input_action: PiiAction::Block,
            output_action: PiiAction::Block,
            input_enabled: true,
            output_enabled: true,
        }],
    });
    assert!(r.is_err());
}

#[test]
fn non_ascii_text_never_splits_a_char() {
    let texts = [
        "Ünïcødé 名前 José García, tél: +33 1 23 45 67 89, e-mail: josé@example.com — IBAN FR14 2004 1010 0505 0001 3M02 606 ✓",
        "€4111 1111 1111 1111€ ß536-22-8756ß 名前は田中です。電話 090-1234-5678",
        "Ⅻ 192.168.0.1Ⅻ ＡＫＩＡＩＯＳＦＯＤＮＮ７ＥＸＡＭＰＬＥ password: пароль123 ",
        "🙂 my name is Zoë 🙂 I am 34 years old🙂 SSN 536-22-8756🙂",
    ];
    let f = all_filter();
    for text in texts {
        for source in [Source::Input, Source::Output] {
            let hits = f.find(text, source);
            let mut last = 0;
            for h in &hits {
                assert!(text.is_char_boundary(h.start) && text.is_char_boundary(h.end));
                assert_eq!(&text[h.start..h.end], h.matched);
                assert!(h.start >= last, "overlap or disorder in {hits:?}");
                last = h.end;
            }
        }
        // Every prefix of the text, cut anywhere on a char boundary, is also safe.
        for (i, _) in text.char_indices() {
            let _ = f.find(&text[..i], Source::Input);
        }
    }
}

#[test]
fn nothing_enabled_finds_nothing() {
    let mut e = entity(PiiType::Email, PiiAction::Block);
    e.input_enabled = false;
    let f = PiiFilter::new(&SensitiveInformationPolicy {
        pii_entities: vec![e],
        regexes: Vec::new(),
    })
    .unwrap();
    assert!(f.find("a@example.com", Source::Input).is_empty());
    assert_eq!(f.find("a@example.com", Source::Output).len(), 1);
}

/// Texts glued from fragments that excite every recognizer (digits, separators, cues,
/// non-ASCII, emoji), checked for the invariants lib.rs relies on.
#[test]
fn random_texts_keep_the_invariants() {
    const FRAGMENTS: [&str; 44] = [
        "4111",
        " ",
        "-",
        "1111",
        "SSN",
        ":",
        "é",
        "日本",
        "🙂",
        "@",
        ".",
        "example",
        "com",
        "AKIA",
        "IOSFODNN7EXAMPLE",
        "password",
        " is ",
        "Maria",
        "Garcia",
        "123",
        "Main",
        "St",
        ",",
        "\n",
        "DE89",
        "3704",
        "0044",
        "(",
        ")",
        "+1",
        "::",
        "ff",
        "00:1A",
        "/",
        "’",
        "\t",
        "0",
        "9",
        "Z",
        "routing number ",
        "NHS ",
        "Dr. ",
        "https://",
        "years old",
    ];
    let f = all_filter();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3000 {
        let n = (next() % 60) as usize;
        let text: String = (0..n)
            .map(|_| FRAGMENTS[(next() % FRAGMENTS.len() as u64) as usize])
            .collect();
        let hits = f.find(&text, Source::Input);
        let mut last = 0;
        for h in &hits {
            assert!(h.start < h.end && h.start >= last, "{text:?}: {hits:?}");
            assert_eq!(&text[h.start..h.end], h.matched);
            last = h.end;
        }
    }
}
