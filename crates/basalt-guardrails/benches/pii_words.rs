//! find() of the word and PII filters on a 500-character text: all 31 PII types and 10
//! custom regexes, 1,000 custom words and the managed profanity list.

use std::hint::black_box;

use basalt_guardrails::Source;
use basalt_guardrails::config::{
    Action, ManagedWords, ManagedWordsType, PiiAction, PiiEntity, PiiType, RegexConfig,
    SensitiveInformationPolicy, Word, WordPolicy,
};
use basalt_guardrails::pii::PiiFilter;
use basalt_guardrails::words::WordFilter;
use criterion::{Criterion, criterion_group, criterion_main};

const TEXT: &str = "Hi, my name is Maria Garcia, I am 34 years old and live at 123 Main St, Springfield, IL 62704. \
Email maria.garcia@example.com or call (415) 555-0132. SSN 536-22-8756, card 4111 1111 1111 1111 exp 08/27 CVV 123. \
IBAN DE89 3704 0044 0532 0130 00, routing number 021000021, account number 000123456789. \
Server 192.168.1.20, MAC 00:1A:2B:3C:4D:5E, key AKIAIOSFODNN7EXAMPLE. \
Passport number A12345678, NHS number 943 476 5919, VIN 1HGCM82633A004352. What the fuck, ticket TCK-123456 for project zeta-42.";

fn pii_filter() -> PiiFilter {
    let pii_entities = PiiType::ALL
        .iter()
        .map(|&kind| PiiEntity {
            kind,
            action: PiiAction::Anonymize,
            input_action: PiiAction::Anonymize,
            output_action: PiiAction::Anonymize,
            input_enabled: true,
            output_enabled: true,
        })
        .collect();
    let patterns = [
        r"TCK-\d{6}",
        r"zeta-\d+",
        r"\bEMP\d{5}\b",
        r"(?i)project\s+\w+",
        r"\b[A-Z]{3}-\d{4}\b",
        r"ORD#\d+",
        r"\bINV-\d{4}-\d+\b",
        r"(?i)confidential",
        r"\b\d{4}-\d{2}-\d{2}\b",
        r"#[a-z]+\b",
    ];
    let regexes = patterns
        .iter()
        .enumerate()
        .map(|(i, p)| RegexConfig {
            name: format!("r{i}"),
            description: None,
            pattern: (*p).into(),
            action: PiiAction::Block,
            input_action: PiiAction::Block,
            output_action: PiiAction::Block,
            input_enabled: true,
            output_enabled: true,
        })
        .collect();
    PiiFilter::new(&SensitiveInformationPolicy {
        pii_entities,
        regexes,
    })
    .unwrap()
}

fn word_filter() -> WordFilter {
    let words = (0..1000)
        .map(|i| Word {
            text: if i % 3 == 0 {
                format!("phrase {i} here")
            } else {
                format!("word{i}")
            },
            input_action: Action::Block,
            output_action: Action::Block,
            input_enabled: true,
            output_enabled: true,
        })
        .collect();
    WordFilter::new(&WordPolicy {
        words,
        managed_word_lists: vec![ManagedWords {
            kind: ManagedWordsType::Profanity,
            input_action: Action::Block,
            output_action: Action::Block,
            input_enabled: true,
            output_enabled: true,
        }],
    })
}

fn bench(c: &mut Criterion) {
    assert!(
        (480..=560).contains(&TEXT.chars().count()),
        "{}",
        TEXT.chars().count()
    );
    let pii = pii_filter();
    let words = word_filter();
    c.bench_function("pii_find_500_chars_31_types_10_regexes", |b| {
        b.iter(|| black_box(pii.find(black_box(TEXT), Source::Input)))
    });
    // Non-ASCII text keeps the regex engines off their fastest (ASCII-only) paths.
    let accented: String = TEXT
        .replace("Maria Garcia", "María García")
        .replace("Main St", "Ñandú St")
        + " ¿Qué tal? Ünïcödé 日本語";
    c.bench_function("pii_find_500_chars_non_ascii", |b| {
        b.iter(|| black_box(pii.find(black_box(&accented), Source::Input)))
    });
    c.bench_function("words_find_500_chars_1000_words_profanity", |b| {
        b.iter(|| black_box(words.find(black_box(TEXT), Source::Input)))
    });
    c.bench_function("pii_and_words_find_500_chars", |b| {
        b.iter(|| {
            black_box(pii.find(black_box(TEXT), Source::Input));
            black_box(words.find(black_box(TEXT), Source::Input))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
