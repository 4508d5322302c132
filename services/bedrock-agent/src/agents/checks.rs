//! What the orchestration loop checks in a small model's output: calls written as text,
//! arguments and answers quoting ids or numbers that nothing the agent saw contains. Pure
//! functions over the conversation, tested here.

use super::schema::Tool;
use serde_json::{Value, json};

/// The text of a message's text blocks.
pub fn text_of(content: &[Value]) -> String {
    content
        .iter()
        .filter_map(|b| b["text"].as_str())
        .collect::<Vec<_>>()
        .join("")
        .trim()
        .to_owned()
}

/// Tool calls written as text: one or more `{"name": …, "arguments": {…}}` objects (the
/// JSON of Qwen's tool-call format, maybe in its `<tool_call>` tags or a code fence) and
/// nothing else, each naming a tool with all its required arguments. Anything else is an
/// answer.
pub fn calls_in_text(text: &str, tools: &[Tool]) -> Option<Vec<Value>> {
    let mut body = text.trim();
    for fence in ["```json", "```"] {
        if let Some(rest) = body.strip_prefix(fence) {
            body = rest.trim_end().strip_suffix("```")?.trim();
            break;
        }
    }
    let body = body.replace("<tool_call>", "").replace("</tool_call>", "");
    if !body.trim_start().starts_with('{') {
        return None;
    }
    let mut calls = Vec::new();
    for value in serde_json::Deserializer::from_str(&body).into_iter::<Value>() {
        let v = value.ok()?;
        let name = v["name"].as_str()?;
        let args = v.get("arguments").or_else(|| v.get("parameters"))?;
        let tool = tools.iter().find(|t| t.name == name)?;
        let props = tool.schema["properties"].as_object()?;
        let args_obj = args.as_object()?;
        if args_obj.keys().any(|k| !props.contains_key(k)) {
            return None;
        }
        let required = tool.schema["required"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if required
            .iter()
            .filter_map(Value::as_str)
            .any(|r| args_obj.get(r).is_none_or(Value::is_null))
        {
            return None;
        }
        calls.push(json!({
            "toolUseId": format!("tooluse_{}", uuid::Uuid::new_v4().simple()),
            "name": name,
            "input": args,
        }));
    }
    (!calls.is_empty()).then_some(calls)
}

/// The text of every text and tool result block of `messages`.
pub fn text_of_messages(messages: &[Value]) -> String {
    let mut out = String::new();
    for m in messages {
        for b in m["content"].as_array().into_iter().flatten() {
            if let Some(t) = b["text"].as_str() {
                out.push_str(t);
                out.push('\n');
            } else if let Some(r) = b.get("toolResult") {
                out.push_str(&text_of(r["content"].as_array().map_or(&[][..], |v| v)));
                out.push('\n');
            }
        }
    }
    out
}

/// Words every message the loop sends back about a made-up value contains: a small model
/// sometimes answers with the message itself.
pub const INVENTED_MARK: &str = "which nothing so far gave";

/// A value a model can only have taken from somewhere: an identifier or a number (no
/// spaces, at least one digit) or a name (one to three capitalized words, as a city or a
/// person). Free text (a reason, a query, a question) is not: the model words it itself.
fn must_be_known(text: &str) -> bool {
    if text.is_empty() {
        return false;
    }
    let id_like =
        !text.chars().any(char::is_whitespace) && text.chars().any(|c| c.is_ascii_digit());
    let words: Vec<&str> = text.split_whitespace().collect();
    let name_like = (1..=3).contains(&words.len())
        && words.iter().all(|w| {
            let mut chars = w.chars();
            chars.next().is_some_and(|c| c.is_uppercase())
                && chars.all(|c| c.is_alphabetic() || matches!(c, '-' | '.' | '\''))
        });
    id_like || name_like
}

/// An argument that must be known (see [`must_be_known`]) and appears nowhere in what the
/// agent was told or shown: the model made it up.
pub fn invented(
    args: &mut Value,
    required: &[Value],
    known_lowercase: &str,
    has_kb: bool,
) -> Option<String> {
    let object = args.as_object_mut()?;
    let mut guessed = Vec::new();
    for (name, value) in object.iter() {
        let text = match value {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
                _ => n.to_string(),
            },
            _ => continue,
        };
        if must_be_known(&text) && !known_lowercase.contains(&text.to_lowercase()) {
            guessed.push((name.clone(), text));
        }
    }
    for (name, text) in guessed {
        if !required.iter().any(|r| *r == name.as_str()) {
            // An optional argument the model guessed (a date, a count) is left out rather
            // than refusing the call: the function does without it.
            object.remove(&name);
            continue;
        }
        let kb = if has_kb {
            ", search the knowledge base"
        } else {
            ""
        };
        return Some(format!(
            "Error: {name} is {text}, {INVENTED_MARK}: the request does not say it and no result contains it. Call the function that returns it first{kb}, or ask the user for it."
        ));
    }
    None
}

/// The first word of `answer` that looks like an id or a number and that nothing the
/// agent was told or shown contains.
pub fn invented_in_text(answer: &str, known_lowercase: &str) -> Option<String> {
    let invented = answer
        .split(|c: char| {
            c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')' | '"' | '\'' | '$' | '!' | '?')
        })
        .map(|w| w.trim_end_matches(['.', ':']))
        .filter(|w| w.chars().any(|c| c.is_ascii_digit()))
        .find(|w| !known_lowercase.contains(&w.to_lowercase()))?;
    Some(format!(
        "Error: your answer mentions {invented}, {INVENTED_MARK}. Answer again with only what the request and the results say, call a function to get it, or ask the user for it."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::schema::Action;

    fn tool(name: &str) -> Tool {
        Tool {
            name: name.into(),
            description: String::new(),
            schema: json!({"type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "integer"}}, "required": ["id"]}),
            action: Action::AskUser,
        }
    }

    #[test]
    fn answers_quoting_unknown_numbers_are_caught() {
        let known = "account acc-1 balance: 1520.75 usd.";
        assert!(invented_in_text("ACC-1 has 1520.75 USD.", known).is_none());
        assert!(invented_in_text("Your balance is $1520.75!", known).is_none());
        let e =
            invented_in_text("ACC-1 has 1520.75 USD and ACC-2 has 1200.00 USD.", known).unwrap();
        assert!(e.contains("ACC-2"), "{e}");
    }

    #[test]
    fn invented_ids_are_caught_free_text_is_not() {
        let known = "book a flight to seattle for user-456. found flight fl-100, 199 usd.";
        let all = [
            json!("flight_id"),
            json!("user_id"),
            json!("amount"),
            json!("reason"),
        ];
        let check = |mut args: Value| invented(&mut args, &all, known, false);
        // A guessed optional argument is dropped, not refused.
        let mut with_date = json!({"flight_id": "FL-100", "date": "2023-10-01"});
        assert!(invented(&mut with_date, &all, known, false).is_none());
        assert_eq!(with_date, json!({"flight_id": "FL-100"}));
        assert!(check(json!({"flight_id": "FL-100", "user_id": "user-456"})).is_none());
        assert!(check(json!({"amount": 199, "city": "Seattle"})).is_none());
        assert!(check(json!({"reason": "the 2 headphones broke"})).is_none());
        // Names must come from somewhere too; free text need not.
        assert!(check(json!({"city": "Seattle", "amount": 199})).is_none());
        let e = check(json!({"flight_id": "FL-100", "city": "New York"}));
        assert!(e.is_none(), "optional: dropped, {e:?}");
        let named = [json!("city")];
        let e = invented(&mut json!({"city": "Paris"}), &named, known, false).unwrap();
        assert!(e.contains("Paris") && e.contains(INVENTED_MARK), "{e}");
        assert!(
            invented(
                &mut json!({"city": "a city by the sea"}),
                &named,
                known,
                false
            )
            .is_none()
        );
        assert!(invented(&mut json!({"city": "paris"}), &named, known, false).is_none());
        let e = check(json!({"flight_id": "FL-101"})).unwrap();
        assert!(e.contains("FL-101") && e.contains("flight_id"), "{e}");
        assert!(!e.contains("knowledge base"), "{e}");
        assert!(check(json!({"amount": 250.5})).is_some());
        let with_kb = invented(&mut json!({"id": "X-1"}), &[json!("id")], known, true).unwrap();
        assert!(with_kb.contains("knowledge base"), "{with_kb}");
    }

    #[test]
    fn calls_written_as_text_are_calls() {
        let tools = [tool("book"), tool("cancel")];
        let calls = calls_in_text(
            "{\"name\": \"book\", \"arguments\": {\"id\": \"FL-1\"}}\n<tool_call>{\"name\": \"cancel\", \"arguments\": {\"id\": \"X\", \"n\": 2}}</tool_call>",
            &tools,
        )
        .unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1]["name"], "cancel");
        assert_eq!(calls[1]["input"]["n"], 2);
        let fenced = "```json\n{\"name\": \"book\", \"arguments\": {\"id\": \"1\"}}\n```";
        assert_eq!(calls_in_text(fenced, &tools).unwrap().len(), 1);
        // Answers, unknown tools, missing or unknown arguments stay text.
        for text in [
            "Your flight FL-1 is booked.",
            "{\"name\": \"fly\", \"arguments\": {\"id\": \"1\"}}",
            "{\"name\": \"book\", \"arguments\": {}}",
            "{\"name\": \"book\", \"arguments\": {\"id\": \"1\", \"x\": 1}}",
            "{\"name\": \"book\", \"arguments\": {\"id\": \"1\"}} and then some",
            "{\"temperature\": 18}",
        ] {
            assert!(calls_in_text(text, &tools).is_none(), "{text}");
        }
    }
}
