//! A guardrail's policies: parsed from CreateGuardrail/UpdateGuardrail's `*PolicyConfig`
//! members, checked beyond what the model's constraints say, and rendered as GetGuardrail's
//! `*Policy` members. The stored form is [`Policies`] serialized: it *is* GetGuardrail's shape,
//! so what a caller reads back is exactly what the engine evaluates.
//!
//! Defaults follow what Bedrock returns for a member left out: every action `BLOCK`, every
//! `*Enabled` true, modalities `["TEXT"]`, a PII entity's input and output actions its `action`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ConfigError;

/// `BLOCK` or `NONE` (topics, content filters, words, grounding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    #[default]
    Block,
    None,
}

/// `BLOCK`, `ANONYMIZE` or `NONE` (PII entities and regexes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PiiAction {
    Block,
    Anonymize,
    None,
}

/// Filter strength, and equally a classifier's confidence: `NONE < LOW < MEDIUM < HIGH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Strength {
    None,
    Low,
    Medium,
    High,
}

impl Strength {
    pub fn as_str(self) -> &'static str {
        match self {
            Strength::None => "NONE",
            Strength::Low => "LOW",
            Strength::Medium => "MEDIUM",
            Strength::High => "HIGH",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContentType {
    Sexual,
    Violence,
    Hate,
    Insults,
    Misconduct,
    PromptAttack,
}

impl ContentType {
    pub const ALL: [ContentType; 6] = [
        ContentType::Sexual,
        ContentType::Violence,
        ContentType::Hate,
        ContentType::Insults,
        ContentType::Misconduct,
        ContentType::PromptAttack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Sexual => "SEXUAL",
            ContentType::Violence => "VIOLENCE",
            ContentType::Hate => "HATE",
            ContentType::Insults => "INSULTS",
            ContentType::Misconduct => "MISCONDUCT",
            ContentType::PromptAttack => "PROMPT_ATTACK",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Modality {
    Text,
    Image,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TopicType {
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ManagedWordsType {
    Profanity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GroundingType {
    Grounding,
    Relevance,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Tier {
    Classic,
    Standard,
}

/// Every PII entity type Bedrock Guardrails lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PiiType {
    Address,
    Age,
    AwsAccessKey,
    AwsSecretKey,
    CaHealthNumber,
    CaSocialInsuranceNumber,
    CreditDebitCardCvv,
    CreditDebitCardExpiry,
    CreditDebitCardNumber,
    DriverId,
    Email,
    InternationalBankAccountNumber,
    IpAddress,
    LicensePlate,
    MacAddress,
    Name,
    Password,
    Phone,
    Pin,
    SwiftCode,
    UkNationalHealthServiceNumber,
    UkNationalInsuranceNumber,
    UkUniqueTaxpayerReferenceNumber,
    Url,
    Username,
    UsBankAccountNumber,
    UsBankRoutingNumber,
    UsIndividualTaxIdentificationNumber,
    UsPassportNumber,
    UsSocialSecurityNumber,
    VehicleIdentificationNumber,
}

impl PiiType {
    /// Every type, in the order of Bedrock's enum.
    pub const ALL: [PiiType; 31] = [
        PiiType::Address,
        PiiType::Age,
        PiiType::AwsAccessKey,
        PiiType::AwsSecretKey,
        PiiType::CaHealthNumber,
        PiiType::CaSocialInsuranceNumber,
        PiiType::CreditDebitCardCvv,
        PiiType::CreditDebitCardExpiry,
        PiiType::CreditDebitCardNumber,
        PiiType::DriverId,
        PiiType::Email,
        PiiType::InternationalBankAccountNumber,
        PiiType::IpAddress,
        PiiType::LicensePlate,
        PiiType::MacAddress,
        PiiType::Name,
        PiiType::Password,
        PiiType::Phone,
        PiiType::Pin,
        PiiType::SwiftCode,
        PiiType::UkNationalHealthServiceNumber,
        PiiType::UkNationalInsuranceNumber,
        PiiType::UkUniqueTaxpayerReferenceNumber,
        PiiType::Url,
        PiiType::Username,
        PiiType::UsBankAccountNumber,
        PiiType::UsBankRoutingNumber,
        PiiType::UsIndividualTaxIdentificationNumber,
        PiiType::UsPassportNumber,
        PiiType::UsSocialSecurityNumber,
        PiiType::VehicleIdentificationNumber,
    ];

    /// The wire name, which is also the placeholder of an anonymized match (`{EMAIL}`).
    pub fn as_str(self) -> &'static str {
        match self {
            PiiType::Address => "ADDRESS",
            PiiType::Age => "AGE",
            PiiType::AwsAccessKey => "AWS_ACCESS_KEY",
            PiiType::AwsSecretKey => "AWS_SECRET_KEY",
            PiiType::CaHealthNumber => "CA_HEALTH_NUMBER",
            PiiType::CaSocialInsuranceNumber => "CA_SOCIAL_INSURANCE_NUMBER",
            PiiType::CreditDebitCardCvv => "CREDIT_DEBIT_CARD_CVV",
            PiiType::CreditDebitCardExpiry => "CREDIT_DEBIT_CARD_EXPIRY",
            PiiType::CreditDebitCardNumber => "CREDIT_DEBIT_CARD_NUMBER",
            PiiType::DriverId => "DRIVER_ID",
            PiiType::Email => "EMAIL",
            PiiType::InternationalBankAccountNumber => "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
            PiiType::IpAddress => "IP_ADDRESS",
            PiiType::LicensePlate => "LICENSE_PLATE",
            PiiType::MacAddress => "MAC_ADDRESS",
            PiiType::Name => "NAME",
            PiiType::Password => "PASSWORD",
            PiiType::Phone => "PHONE",
            PiiType::Pin => "PIN",
            PiiType::SwiftCode => "SWIFT_CODE",
            PiiType::UkNationalHealthServiceNumber => "UK_NATIONAL_HEALTH_SERVICE_NUMBER",
            PiiType::UkNationalInsuranceNumber => "UK_NATIONAL_INSURANCE_NUMBER",
            PiiType::UkUniqueTaxpayerReferenceNumber => "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER",
            PiiType::Url => "URL",
            PiiType::Username => "USERNAME",
            PiiType::UsBankAccountNumber => "US_BANK_ACCOUNT_NUMBER",
            PiiType::UsBankRoutingNumber => "US_BANK_ROUTING_NUMBER",
            PiiType::UsIndividualTaxIdentificationNumber => {
                "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER"
            }
            PiiType::UsPassportNumber => "US_PASSPORT_NUMBER",
            PiiType::UsSocialSecurityNumber => "US_SOCIAL_SECURITY_NUMBER",
            PiiType::VehicleIdentificationNumber => "VEHICLE_IDENTIFICATION_NUMBER",
        }
    }
}

fn yes() -> bool {
    true
}

fn text_only() -> Vec<Modality> {
    vec![Modality::Text]
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Topic {
    pub name: String,
    pub definition: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
    #[serde(rename = "type")]
    pub kind: TopicType,
    #[serde(default)]
    pub input_action: Action,
    #[serde(default)]
    pub output_action: Action,
    #[serde(default = "yes")]
    pub input_enabled: bool,
    #[serde(default = "yes")]
    pub output_enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TierName {
    pub tier_name: Tier,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicPolicy {
    pub topics: Vec<Topic>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<TierName>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentFilter {
    #[serde(rename = "type")]
    pub kind: ContentType,
    pub input_strength: Strength,
    pub output_strength: Strength,
    #[serde(default = "text_only")]
    pub input_modalities: Vec<Modality>,
    #[serde(default = "text_only")]
    pub output_modalities: Vec<Modality>,
    #[serde(default)]
    pub input_action: Action,
    #[serde(default)]
    pub output_action: Action,
    #[serde(default = "yes")]
    pub input_enabled: bool,
    #[serde(default = "yes")]
    pub output_enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentPolicy {
    pub filters: Vec<ContentFilter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<TierName>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Word {
    pub text: String,
    #[serde(default)]
    pub input_action: Action,
    #[serde(default)]
    pub output_action: Action,
    #[serde(default = "yes")]
    pub input_enabled: bool,
    #[serde(default = "yes")]
    pub output_enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedWords {
    #[serde(rename = "type")]
    pub kind: ManagedWordsType,
    #[serde(default)]
    pub input_action: Action,
    #[serde(default)]
    pub output_action: Action,
    #[serde(default = "yes")]
    pub input_enabled: bool,
    #[serde(default = "yes")]
    pub output_enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WordPolicy {
    #[serde(default)]
    pub words: Vec<Word>,
    #[serde(default)]
    pub managed_word_lists: Vec<ManagedWords>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PiiEntity {
    #[serde(rename = "type")]
    pub kind: PiiType,
    pub action: PiiAction,
    pub input_action: PiiAction,
    pub output_action: PiiAction,
    #[serde(default = "yes")]
    pub input_enabled: bool,
    #[serde(default = "yes")]
    pub output_enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegexConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub pattern: String,
    pub action: PiiAction,
    pub input_action: PiiAction,
    pub output_action: PiiAction,
    #[serde(default = "yes")]
    pub input_enabled: bool,
    #[serde(default = "yes")]
    pub output_enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SensitiveInformationPolicy {
    #[serde(default)]
    pub pii_entities: Vec<PiiEntity>,
    #[serde(default)]
    pub regexes: Vec<RegexConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroundingFilter {
    #[serde(rename = "type")]
    pub kind: GroundingType,
    pub threshold: f64,
    #[serde(default)]
    pub action: Action,
    #[serde(default = "yes")]
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroundingPolicy {
    pub filters: Vec<GroundingFilter>,
}

/// Every policy of one guardrail version, in GetGuardrail's shape.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policies {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_policy: Option<TopicPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_policy: Option<ContentPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub word_policy: Option<WordPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitive_information_policy: Option<SensitiveInformationPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contextual_grounding_policy: Option<GroundingPolicy>,
}

fn invalid(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

fn parse<T: serde::de::DeserializeOwned>(v: &Value, what: &str) -> Result<T, ConfigError> {
    serde_json::from_value(v.clone()).map_err(|e| invalid(format!("Invalid {what}: {e}")))
}

/// A PII entity or regex config: `action` is required, the per-direction actions default to it.
fn with_direction_actions(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        let action = o.get("action").cloned().unwrap_or(Value::Null);
        for k in ["inputAction", "outputAction"] {
            if o.get(k).is_none_or(Value::is_null) {
                o.insert(k.into(), action.clone());
            }
        }
    }
    v
}

impl Policies {
    /// The policies of a CreateGuardrail or UpdateGuardrail request (`topicPolicyConfig`,
    /// `contentPolicyConfig`...), checked. Members the request leaves out are absent.
    pub fn from_request(input: &Value) -> Result<Policies, ConfigError> {
        let mut p = Policies::default();
        if let Some(t) = input.get("topicPolicyConfig").filter(|v| !v.is_null()) {
            let topics: Vec<Topic> = t["topicsConfig"]
                .as_array()
                .map(|a| a.iter().map(|v| parse(v, "topic")).collect())
                .transpose()?
                .unwrap_or_default();
            let tier = t
                .get("tierConfig")
                .filter(|v| !v.is_null())
                .map(|v| parse(v, "tierConfig"))
                .transpose()?;
            p.topic_policy = Some(TopicPolicy { topics, tier });
        }
        if let Some(c) = input.get("contentPolicyConfig").filter(|v| !v.is_null()) {
            let filters: Vec<ContentFilter> = c["filtersConfig"]
                .as_array()
                .map(|a| a.iter().map(|v| parse(v, "content filter")).collect())
                .transpose()?
                .unwrap_or_default();
            let tier = c
                .get("tierConfig")
                .filter(|v| !v.is_null())
                .map(|v| parse(v, "tierConfig"))
                .transpose()?;
            p.content_policy = Some(ContentPolicy { filters, tier });
        }
        if let Some(w) = input.get("wordPolicyConfig").filter(|v| !v.is_null()) {
            let words: Vec<Word> = w["wordsConfig"]
                .as_array()
                .map(|a| a.iter().map(|v| parse(v, "word")).collect())
                .transpose()?
                .unwrap_or_default();
            let managed: Vec<ManagedWords> = w["managedWordListsConfig"]
                .as_array()
                .map(|a| a.iter().map(|v| parse(v, "managed word list")).collect())
                .transpose()?
                .unwrap_or_default();
            p.word_policy = Some(WordPolicy {
                words,
                managed_word_lists: managed,
            });
        }
        if let Some(s) = input
            .get("sensitiveInformationPolicyConfig")
            .filter(|v| !v.is_null())
        {
            let pii: Vec<PiiEntity> = s["piiEntitiesConfig"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| parse(&with_direction_actions(v), "PII entity"))
                        .collect()
                })
                .transpose()?
                .unwrap_or_default();
            let regexes: Vec<RegexConfig> = s["regexesConfig"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| parse(&with_direction_actions(v), "regex"))
                        .collect()
                })
                .transpose()?
                .unwrap_or_default();
            p.sensitive_information_policy = Some(SensitiveInformationPolicy {
                pii_entities: pii,
                regexes,
            });
        }
        if let Some(g) = input
            .get("contextualGroundingPolicyConfig")
            .filter(|v| !v.is_null())
        {
            let filters: Vec<GroundingFilter> = g["filtersConfig"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| parse(v, "contextual grounding filter"))
                        .collect()
                })
                .transpose()?
                .unwrap_or_default();
            p.contextual_grounding_policy = Some(GroundingPolicy { filters });
        }
        p.check()?;
        Ok(p)
    }

    /// The rules the model's constraints cannot say.
    fn check(&self) -> Result<(), ConfigError> {
        if let Some(t) = &self.topic_policy {
            let mut seen = std::collections::HashSet::new();
            for topic in &t.topics {
                if !seen.insert(topic.name.to_lowercase()) {
                    return Err(invalid(format!(
                        "Topic names must be unique: {} is repeated.",
                        topic.name
                    )));
                }
            }
        }
        if let Some(c) = &self.content_policy {
            let mut seen = std::collections::HashSet::new();
            for f in &c.filters {
                if !seen.insert(f.kind) {
                    return Err(invalid(format!(
                        "Content filter types must be unique: {} is repeated.",
                        f.kind.as_str()
                    )));
                }
                if f.kind == ContentType::PromptAttack && f.output_strength != Strength::None {
                    return Err(invalid(
                        "The output strength of the PROMPT_ATTACK filter must be NONE: prompt attacks are detected in input only.",
                    ));
                }
                if f.input_modalities.contains(&Modality::Image)
                    || f.output_modalities.contains(&Modality::Image)
                {
                    return Err(invalid(format!(
                        "The IMAGE modality is not available for the {} filter in Basalt: it has no image classifier. Use TEXT.",
                        f.kind.as_str()
                    )));
                }
            }
        }
        if let Some(w) = &self.word_policy {
            if w.words.is_empty() && w.managed_word_lists.is_empty() {
                return Err(invalid(
                    "A word policy needs at least one word or one managed word list.",
                ));
            }
            let mut seen = std::collections::HashSet::new();
            for word in &w.words {
                if word.text.trim().is_empty() {
                    return Err(invalid("A word must not be blank."));
                }
                if !seen.insert(word.text.to_lowercase()) {
                    return Err(invalid(format!(
                        "Words must be unique: {} is repeated.",
                        word.text
                    )));
                }
            }
        }
        if let Some(s) = &self.sensitive_information_policy {
            if s.pii_entities.is_empty() && s.regexes.is_empty() {
                return Err(invalid(
                    "A sensitive information policy needs at least one PII entity or one regex.",
                ));
            }
            let mut seen = std::collections::HashSet::new();
            for e in &s.pii_entities {
                if !seen.insert(e.kind) {
                    return Err(invalid(format!(
                        "PII entity types must be unique: {} is repeated.",
                        e.kind.as_str()
                    )));
                }
            }
            let mut names = std::collections::HashSet::new();
            for r in &s.regexes {
                if !names.insert(r.name.clone()) {
                    return Err(invalid(format!(
                        "Regex names must be unique: {} is repeated.",
                        r.name
                    )));
                }
                regex::Regex::new(&r.pattern).map_err(|e| {
                    invalid(format!(
                        "The regex pattern of {} is not valid: {}",
                        r.name,
                        e.to_string().lines().last().unwrap_or("")
                    ))
                })?;
            }
        }
        if let Some(g) = &self.contextual_grounding_policy {
            let mut seen = std::collections::HashSet::new();
            for f in &g.filters {
                if !seen.insert(f.kind as u8) {
                    return Err(invalid("Contextual grounding filter types must be unique."));
                }
                if !(0.0..=0.99).contains(&f.threshold) {
                    return Err(invalid(format!(
                        "The threshold of a contextual grounding filter must be between 0 and 0.99: {} is not.",
                        f.threshold
                    )));
                }
            }
        }
        Ok(())
    }

    /// GetGuardrail's policy members (`topicPolicy`, `contentPolicy`...), merged into `out`.
    pub fn render_into(&self, out: &mut serde_json::Map<String, Value>) {
        if let Ok(Value::Object(m)) = serde_json::to_value(self) {
            out.extend(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_are_what_bedrock_returns() {
        let p = Policies::from_request(&json!({
            "topicPolicyConfig": {"topicsConfig": [{"name": "Violence", "definition": "Harm", "type": "DENY"}]},
            "contentPolicyConfig": {"filtersConfig": [{"type": "HATE", "inputStrength": "HIGH", "outputStrength": "LOW"}]},
            "sensitiveInformationPolicyConfig": {"piiEntitiesConfig": [{"type": "EMAIL", "action": "ANONYMIZE"}]},
        }))
        .unwrap();
        let mut out = serde_json::Map::new();
        p.render_into(&mut out);
        let v = Value::Object(out);
        assert_eq!(v["topicPolicy"]["topics"][0]["inputAction"], "BLOCK");
        assert_eq!(v["topicPolicy"]["topics"][0]["outputEnabled"], true);
        assert_eq!(
            v["contentPolicy"]["filters"][0]["inputModalities"],
            json!(["TEXT"])
        );
        let e = &v["sensitiveInformationPolicy"]["piiEntities"][0];
        assert_eq!(e["inputAction"], "ANONYMIZE");
        assert_eq!(e["outputAction"], "ANONYMIZE");
        assert_eq!(
            PiiType::UsSocialSecurityNumber.as_str(),
            "US_SOCIAL_SECURITY_NUMBER"
        );
        // The stored form reads back unchanged.
        let again: Policies = serde_json::from_value(v).unwrap();
        assert_eq!(again, p);
    }

    #[test]
    fn rules_beyond_the_model_are_checked() {
        let bad = [
            json!({"contentPolicyConfig": {"filtersConfig": [{"type": "PROMPT_ATTACK", "inputStrength": "HIGH", "outputStrength": "HIGH"}]}}),
            json!({"contentPolicyConfig": {"filtersConfig": [{"type": "HATE", "inputStrength": "HIGH", "outputStrength": "HIGH"}, {"type": "HATE", "inputStrength": "LOW", "outputStrength": "LOW"}]}}),
            json!({"sensitiveInformationPolicyConfig": {"regexesConfig": [{"name": "x", "pattern": "(", "action": "BLOCK"}]}}),
            json!({"contextualGroundingPolicyConfig": {"filtersConfig": [{"type": "GROUNDING", "threshold": 1.0}]}}),
            json!({"topicPolicyConfig": {"topicsConfig": [{"name": "A", "definition": "a", "type": "DENY"}, {"name": "a", "definition": "b", "type": "DENY"}]}}),
            json!({"contentPolicyConfig": {"filtersConfig": [{"type": "HATE", "inputStrength": "HUGE", "outputStrength": "HIGH"}]}}),
        ];
        for b in bad {
            assert!(Policies::from_request(&b).is_err(), "{b}");
        }
    }
}
