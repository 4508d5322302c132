//! Mocked service integrations as Step Functions Local defines them: a mock configuration
//! file (`SFN_MOCK_CONFIG`) names test cases per state machine, each mapping Task states to
//! mocked responses, and an execution started on `stateMachine:Name#TestCase` answers those
//! states from the file instead of calling the service. The file is configuration, read once
//! at startup; what an execution needs to stay deterministic across restarts and nodes (its
//! test case, how often each state was invoked) lives in its record.

use basalt_core::AwsError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;

/// What a mocked Task state answers for one invocation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Mocked {
    Return(Value),
    Throw { error: String, cause: String },
}

#[derive(Debug, Default)]
pub struct MockConfig {
    /// machine name → test case → state name → mocked response name.
    machines: HashMap<String, HashMap<String, HashMap<String, String>>>,
    /// mocked response name → entries by invocation index, contiguous from 0.
    responses: HashMap<String, Vec<(u64, u64, Mocked)>>,
}

fn index_range(key: &str) -> Option<(u64, u64)> {
    let parse = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match key.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b)?);
            (a <= b).then_some((a, b))
        }
        None => parse(key).map(|n| (n, n)),
    }
}

fn entry(name: &str, key: &str, v: &Value) -> Result<Mocked, String> {
    let at = format!("MockedResponses.{name}.\"{key}\"");
    let obj = v
        .as_object()
        .ok_or_else(|| format!("{at} must be an object"))?;
    match (obj.get("Return"), obj.get("Throw")) {
        (Some(_), Some(_)) => Err(format!("{at} has both Return and Throw; give one")),
        (None, None) => Err(format!("{at} needs Return or Throw")),
        (Some(r), None) => Ok(Mocked::Return(r.clone())),
        (None, Some(t)) => {
            let error = t
                .get("Error")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{at}.Throw needs an Error string"))?;
            let cause = match t.get("Cause") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(_) => return Err(format!("{at}.Throw.Cause must be a string")),
            };
            Ok(Mocked::Throw {
                error: error.to_owned(),
                cause,
            })
        }
    }
}

fn object<'a>(v: &'a Value, at: &str) -> Result<&'a serde_json::Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{at} must be an object"))
}

impl MockConfig {
    /// Reads and checks the file; the error is one line naming what is wrong.
    pub fn load(path: &std::path::Path) -> Result<MockConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("mock config {}: {e}", path.display()))?;
        MockConfig::parse(&text).map_err(|e| format!("mock config {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<MockConfig, String> {
        let root: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let root = object(&root, "the file")?;
        let mut cfg = MockConfig::default();
        let empty = Value::Object(Default::default());
        let responses = object(
            root.get("MockedResponses").unwrap_or(&empty),
            "MockedResponses",
        )?;
        for (name, r) in responses {
            let mut entries = Vec::new();
            for (key, v) in object(r, &format!("MockedResponses.{name}"))? {
                let (a, b) = index_range(key).ok_or_else(|| {
                    format!(
                        "MockedResponses.{name}: \"{key}\" is not an invocation index (\"0\") or range (\"1-2\")"
                    )
                })?;
                entries.push((a, b, entry(name, key, v)?));
            }
            entries.sort_by_key(|(a, _, _)| *a);
            // Gaps or overlaps would leave an invocation with no answer or two.
            let mut next = 0u64;
            for (a, b, _) in &entries {
                if *a != next {
                    return Err(format!(
                        "MockedResponses.{name}: invocation indexes must run from 0 without gaps or overlaps (expected {next}, found {a})"
                    ));
                }
                next = b.saturating_add(1);
            }
            if entries.is_empty() {
                return Err(format!("MockedResponses.{name} has no responses"));
            }
            cfg.responses.insert(name.clone(), entries);
        }
        let machines = object(root.get("StateMachines").unwrap_or(&empty), "StateMachines")?;
        for (machine, m) in machines {
            let at = format!("StateMachines.{machine}");
            let m = object(m, &at)?;
            let cases = object(
                m.get("TestCases").unwrap_or(&empty),
                &format!("{at}.TestCases"),
            )?;
            let mut by_case = HashMap::new();
            for (case, states) in cases {
                let at = format!("{at}.TestCases.{case}");
                let mut by_state = HashMap::new();
                for (state, response) in object(states, &at)? {
                    let response = response
                        .as_str()
                        .ok_or_else(|| format!("{at}.{state} must name a mocked response"))?;
                    if !cfg.responses.contains_key(response) {
                        return Err(format!(
                            "{at}.{state} names the mocked response {response}, which MockedResponses does not define"
                        ));
                    }
                    by_state.insert(state.clone(), response.to_owned());
                }
                by_case.insert(case.clone(), by_state);
            }
            cfg.machines.insert(machine.clone(), by_case);
        }
        Ok(cfg)
    }

    pub fn has_test_case(&self, machine: &str, case: &str) -> bool {
        self.machines
            .get(machine)
            .is_some_and(|c| c.contains_key(case))
    }

    /// Whether `state` is mocked in this test case.
    pub fn is_mocked(&self, machine: &str, case: &str, state: &str) -> bool {
        self.response_name(machine, case, state).is_some()
    }

    fn response_name(&self, machine: &str, case: &str, state: &str) -> Option<&String> {
        self.machines.get(machine)?.get(case)?.get(state)
    }

    /// The answer of `state`'s invocation `index` (0 first); past the last index the last
    /// entry answers again, so a Retry never falls through to a real call.
    pub fn pick(&self, machine: &str, case: &str, state: &str, index: u64) -> Option<Mocked> {
        let entries = self
            .responses
            .get(self.response_name(machine, case, state)?)?;
        entries
            .iter()
            .find(|(a, b, _)| (*a..=*b).contains(&index))
            .or(entries.last())
            .map(|(_, _, m)| m.clone())
    }
}

/// `arn:...:stateMachine:Name#TestCase` → (the machine ARN, the test case).
pub fn split_test_case(arn: &str) -> (&str, Option<&str>) {
    match arn.split_once('#') {
        Some((base, case)) => (base, Some(case)),
        None => (arn, None),
    }
}

/// Checks the test case an execution asks for against the configuration.
pub fn check_test_case(
    cfg: Option<&MockConfig>,
    machine_name: &str,
    case: &str,
) -> Result<(), AwsError> {
    let Some(cfg) = cfg else {
        return Err(AwsError::validation(format!(
            "Test case '{case}' cannot run: no mock configuration was given (set SFN_MOCK_CONFIG)"
        )));
    };
    if case.is_empty() || !cfg.has_test_case(machine_name, case) {
        return Err(AwsError::validation(format!(
            "Test case '{case}' is not defined for state machine '{machine_name}' in the mock configuration"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GOOD: &str = r#"{
      "StateMachines": {"M": {"TestCases": {"Happy": {"A": "Ok"}, "Retry": {"A": "Flaky"}}}},
      "MockedResponses": {
        "Ok": {"0": {"Return": {"v": 1}}},
        "Flaky": {"0": {"Throw": {"Error": "E0", "Cause": "c0"}},
                  "1-2": {"Throw": {"Error": "E12"}},
                  "3": {"Return": 3}}
      }
    }"#;

    #[test]
    fn picks_by_index_and_range() {
        let c = MockConfig::parse(GOOD).unwrap();
        assert!(c.has_test_case("M", "Happy"));
        assert!(!c.has_test_case("M", "Nope"));
        assert!(c.is_mocked("M", "Happy", "A"));
        assert!(!c.is_mocked("M", "Happy", "B"));
        assert_eq!(
            c.pick("M", "Happy", "A", 0),
            Some(Mocked::Return(json!({"v": 1})))
        );
        let err = |e: &str, c: &str| {
            Some(Mocked::Throw {
                error: e.into(),
                cause: c.into(),
            })
        };
        assert_eq!(c.pick("M", "Retry", "A", 0), err("E0", "c0"));
        assert_eq!(c.pick("M", "Retry", "A", 1), err("E12", ""));
        assert_eq!(c.pick("M", "Retry", "A", 2), err("E12", ""));
        assert_eq!(c.pick("M", "Retry", "A", 3), Some(Mocked::Return(json!(3))));
        assert_eq!(c.pick("M", "Retry", "A", 9), Some(Mocked::Return(json!(3))));
        assert_eq!(c.pick("M", "Retry", "B", 0), None);
    }

    #[test]
    fn return_and_throw_are_exclusive() {
        let both = r#"{"MockedResponses": {"R": {"0": {"Return": 1, "Throw": {"Error": "E"}}}}}"#;
        assert!(MockConfig::parse(both).unwrap_err().contains("both"));
        let neither = r#"{"MockedResponses": {"R": {"0": {}}}}"#;
        assert!(
            MockConfig::parse(neither)
                .unwrap_err()
                .contains("Return or Throw")
        );
        let no_error = r#"{"MockedResponses": {"R": {"0": {"Throw": {"Cause": "c"}}}}}"#;
        assert!(MockConfig::parse(no_error).unwrap_err().contains("Error"));
    }

    #[test]
    fn bad_files_are_refused() {
        for bad in [
            "not json",
            "[]",
            r#"{"MockedResponses": {"R": {"x": {"Return": 1}}}}"#,
            r#"{"MockedResponses": {"R": {"2-1": {"Return": 1}}}}"#,
            r#"{"MockedResponses": {"R": {"1": {"Return": 1}}}}"#,
            r#"{"MockedResponses": {"R": {"0-2": {"Return": 1}, "1": {"Return": 2}}}}"#,
            r#"{"MockedResponses": {"R": {}}}"#,
            r#"{"MockedResponses": {"R": {"-1": {"Return": 1}}}}"#,
            r#"{"StateMachines": {"M": {"TestCases": {"T": {"A": "Missing"}}}}}"#,
            r#"{"StateMachines": {"M": {"TestCases": {"T": {"A": 1}}}}}"#,
            r#"{"StateMachines": {"M": []}}"#,
        ] {
            assert!(MockConfig::parse(bad).is_err(), "{bad}");
        }
        assert!(MockConfig::load(std::path::Path::new("/nonexistent/mock.json")).is_err());
    }

    #[test]
    fn test_case_in_the_arn() {
        assert_eq!(
            split_test_case("arn:aws:states:r:1:stateMachine:M#Happy"),
            ("arn:aws:states:r:1:stateMachine:M", Some("Happy"))
        );
        assert_eq!(split_test_case("arn:x"), ("arn:x", None));
        let c = MockConfig::parse(GOOD).unwrap();
        assert!(check_test_case(Some(&c), "M", "Happy").is_ok());
        assert!(check_test_case(Some(&c), "M", "Other").is_err());
        assert!(check_test_case(None, "M", "Happy").is_err());
    }
}
