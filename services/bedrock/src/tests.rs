use super::*;
use basalt_bedrock_runtime::catalog;

fn ctx(region: &str) -> RequestContext {
    RequestContext::internal("123456789012", region, "http://127.0.0.1:4566")
}

async fn call(region: &str, op: &str, input: Value) -> Result<Value, AwsError> {
    Bedrock::new(basalt_bedrock_runtime::guardrails::Guardrails::new(
        std::sync::Arc::new(basalt_store::MemoryState::default()),
    ))
    .call(&ctx(region), op, input)
    .await
    .map(|o| o.body)
}

fn ids(list: &Value, key: &str, id: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[id].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn lists_exactly_the_catalog() {
    let out = call("us-east-1", "ListFoundationModels", json!({}))
        .await
        .unwrap();
    let listed = ids(&out, "modelSummaries", "modelId");
    let catalog: Vec<_> = FOUNDATION_MODELS.iter().map(|f| f.id.to_owned()).collect();
    assert_eq!(listed, catalog);
    for m in out["modelSummaries"].as_array().unwrap() {
        let id = m["modelId"].as_str().unwrap();
        // Every listed id is one the runtime serves.
        assert!(catalog::family(id).is_some(), "{id}");
        assert_eq!(
            m["modelArn"],
            format!("arn:aws:bedrock:us-east-1::foundation-model/{id}")
        );
        assert_eq!(m["inferenceTypesSupported"], json!(["ON_DEMAND"]));
        assert_eq!(m["customizationsSupported"], json!([]));
        assert_eq!(m["modelLifecycle"], json!({"status": "ACTIVE"}));
        assert!(m["responseStreamingSupported"].is_boolean());
    }
}

#[tokio::test]
async fn filters() {
    let emb = call(
        "us-east-1",
        "ListFoundationModels",
        json!({"byOutputModality": "EMBEDDING"}),
    )
    .await
    .unwrap();
    let emb = ids(&emb, "modelSummaries", "modelId");
    assert!(emb.contains(&"amazon.titan-embed-text-v2:0".to_owned()));
    assert!(
        emb.iter()
            .all(|id| catalog::family(id).unwrap().is_embedding())
    );
    let text = call(
        "us-east-1",
        "ListFoundationModels",
        json!({"byOutputModality": "TEXT"}),
    )
    .await
    .unwrap();
    let text = ids(&text, "modelSummaries", "modelId");
    assert!(text.iter().all(|id| catalog::is_text_model(id)));
    assert_eq!(text.len() + emb.len(), FOUNDATION_MODELS.len());
    let img = call(
        "us-east-1",
        "ListFoundationModels",
        json!({"byOutputModality": "IMAGE"}),
    )
    .await
    .unwrap();
    assert_eq!(img["modelSummaries"], json!([]));

    for p in ["anthropic", "ANTHROPIC", "Anthropic"] {
        let out = call(
            "us-east-1",
            "ListFoundationModels",
            json!({"byProvider": p}),
        )
        .await
        .unwrap();
        let got = ids(&out, "modelSummaries", "providerName");
        assert!(
            !got.is_empty() && got.iter().all(|n| n == "Anthropic"),
            "{p}"
        );
    }
    for p in ["mistral ai", "mistral"] {
        let out = call(
            "us-east-1",
            "ListFoundationModels",
            json!({"byProvider": p}),
        )
        .await
        .unwrap();
        let expected = FOUNDATION_MODELS
            .iter()
            .filter(|f| f.provider == "Mistral AI")
            .count();
        assert!(expected > 0);
        assert_eq!(
            ids(&out, "modelSummaries", "providerName").len(),
            expected,
            "{p}"
        );
    }
    let out = call(
        "us-east-1",
        "ListFoundationModels",
        json!({"byProvider": "nobody"}),
    )
    .await
    .unwrap();
    assert_eq!(out["modelSummaries"], json!([]));

    let out = call(
        "us-east-1",
        "ListFoundationModels",
        json!({"byProvider": "cohere", "byOutputModality": "EMBEDDING", "byInferenceType": "ON_DEMAND"}),
    )
    .await
    .unwrap();
    assert_eq!(
        ids(&out, "modelSummaries", "modelId"),
        ["cohere.embed-english-v3", "cohere.embed-multilingual-v3"]
    );
    for input in [
        json!({"byInferenceType": "PROVISIONED"}),
        json!({"byCustomizationType": "FINE_TUNING"}),
    ] {
        let out = call("us-east-1", "ListFoundationModels", input)
            .await
            .unwrap();
        assert_eq!(out["modelSummaries"], json!([]));
    }
}

#[tokio::test]
async fn get_foundation_model_by_id_and_arn() {
    let id = "anthropic.claude-3-haiku-20240307-v1:0";
    let by_id = call(
        "eu-west-1",
        "GetFoundationModel",
        json!({"modelIdentifier": id}),
    )
    .await
    .unwrap();
    let d = &by_id["modelDetails"];
    assert_eq!(d["modelId"], id);
    assert_eq!(d["modelName"], "Claude 3 Haiku");
    assert_eq!(d["providerName"], "Anthropic");
    assert_eq!(d["inputModalities"], json!(["TEXT", "IMAGE"]));
    assert_eq!(
        d["modelArn"],
        format!("arn:aws:bedrock:eu-west-1::foundation-model/{id}")
    );
    let arn = format!("arn:aws:bedrock:us-west-2::foundation-model/{id}");
    let by_arn = call(
        "eu-west-1",
        "GetFoundationModel",
        json!({"modelIdentifier": arn}),
    )
    .await
    .unwrap();
    assert_eq!(by_arn, by_id);
}

#[tokio::test]
async fn unknown_foundation_model() {
    for bad in [
        "acme.nothing-v1",
        "us.anthropic.claude-3-haiku-20240307-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0",
    ] {
        let e = call(
            "us-east-1",
            "GetFoundationModel",
            json!({"modelIdentifier": bad}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "ResourceNotFoundException");
        assert_eq!(e.status, 404);
        assert_eq!(e.message, format!("The model ID {bad} does not exist."));
    }
}

#[tokio::test]
async fn inference_profiles_us() {
    let out = call("us-east-1", "ListInferenceProfiles", json!({}))
        .await
        .unwrap();
    let list = out["inferenceProfileSummaries"].as_array().unwrap();
    assert!(out.get("nextToken").is_none());
    let ids: Vec<&str> = list
        .iter()
        .map(|p| p["inferenceProfileId"].as_str().unwrap())
        .collect();
    assert!(
        ids.iter()
            .all(|i| i.starts_with("us.") || i.starts_with("global.")),
        "{ids:?}"
    );
    assert!(ids.contains(&"global.anthropic.claude-sonnet-4-20250514-v1:0"));
    let p = list
        .iter()
        .find(|p| p["inferenceProfileId"] == "us.anthropic.claude-3-haiku-20240307-v1:0")
        .unwrap();
    assert_eq!(p["inferenceProfileName"], "US Anthropic Claude 3 Haiku");
    assert_eq!(
        p["inferenceProfileArn"],
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0"
    );
    assert_eq!(
        p["description"],
        "Routes requests to Anthropic Claude 3 Haiku in us-east-1, us-east-2 and us-west-2."
    );
    assert_eq!(p["status"], "ACTIVE");
    assert_eq!(p["type"], "SYSTEM_DEFINED");
    let arns: Vec<&str> = p["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["modelArn"].as_str().unwrap())
        .collect();
    assert_eq!(
        arns,
        [
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
            "arn:aws:bedrock:us-east-2::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
            "arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
        ]
    );
    // Every profile routes to a chat model the runtime serves, under its own id too.
    for p in list {
        let id = p["inferenceProfileId"].as_str().unwrap();
        assert!(catalog::is_text_model(id), "{id}");
        assert!(catalog::find(id).is_some(), "{id}");
        let models = p["models"].as_array().unwrap();
        assert!((1..=5).contains(&models.len()));
    }
    let typed = call(
        "us-east-1",
        "ListInferenceProfiles",
        json!({"typeEquals": "SYSTEM_DEFINED"}),
    )
    .await
    .unwrap();
    assert_eq!(typed, out);
    let app = call(
        "us-east-1",
        "ListInferenceProfiles",
        json!({"typeEquals": "APPLICATION"}),
    )
    .await
    .unwrap();
    assert_eq!(app, json!({"inferenceProfileSummaries": []}));
}

#[tokio::test]
async fn inference_profiles_by_region() {
    let eu = call("eu-central-1", "ListInferenceProfiles", json!({}))
        .await
        .unwrap();
    let ids: Vec<String> = ids(&eu, "inferenceProfileSummaries", "inferenceProfileId");
    assert!(ids.contains(&"eu.amazon.nova-pro-v1:0".to_owned()));
    assert!(
        ids.iter()
            .all(|i| i.starts_with("eu.") || i.starts_with("global.")),
        "{ids:?}"
    );
    let p = &eu["inferenceProfileSummaries"][0];
    assert_eq!(p["inferenceProfileName"], "EU Anthropic Claude 3 Haiku");
    assert!(
        p["inferenceProfileArn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:bedrock:eu-central-1:123456789012:inference-profile/eu.")
    );
    // Elsewhere only the global profiles.
    let ap = call("ap-southeast-1", "ListInferenceProfiles", json!({}))
        .await
        .unwrap();
    let g = &ap["inferenceProfileSummaries"];
    assert_eq!(g.as_array().unwrap().len(), 1);
    assert_eq!(
        g[0]["inferenceProfileName"],
        "Global Anthropic Claude Sonnet 4"
    );
    assert_eq!(
        g[0]["models"],
        json!([{"modelArn": "arn:aws:bedrock:ap-southeast-1::foundation-model/anthropic.claude-sonnet-4-20250514-v1:0"}])
    );
    let e = call(
        "eu-central-1",
        "GetInferenceProfile",
        json!({"inferenceProfileIdentifier": "us.amazon.nova-pro-v1:0"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "ResourceNotFoundException");
}

#[tokio::test]
async fn pagination() {
    let all = call("us-west-2", "ListInferenceProfiles", json!({}))
        .await
        .unwrap();
    let all = ids(&all, "inferenceProfileSummaries", "inferenceProfileId");
    assert!(all.len() > 5);
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut input = json!({"maxResults": 4});
        if let Some(t) = &token {
            input["nextToken"] = json!(t);
        }
        let out = call("us-west-2", "ListInferenceProfiles", input)
            .await
            .unwrap();
        let page = ids(&out, "inferenceProfileSummaries", "inferenceProfileId");
        assert!(!page.is_empty() && page.len() <= 4);
        seen.extend(page);
        pages += 1;
        match out.get("nextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, all);
    assert_eq!(pages, all.len().div_ceil(4));

    for bad in [
        "garbage",
        "bm90LWEtdG9rZW4",
        &encode_token(0),
        &encode_token(all.len()),
        &encode_token(10_000),
    ] {
        let e = call(
            "us-west-2",
            "ListInferenceProfiles",
            json!({"nextToken": bad}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "ValidationException", "{bad}");
        assert_eq!(e.status, 400);
    }
    let e = call(
        "us-west-2",
        "ListInferenceProfiles",
        json!({"maxResults": 0}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "ValidationException");
}

#[tokio::test]
async fn get_inference_profile_by_id_and_arn() {
    let id = "us.anthropic.claude-3-5-sonnet-20241022-v2:0";
    let by_id = call(
        "us-east-1",
        "GetInferenceProfile",
        json!({"inferenceProfileIdentifier": id}),
    )
    .await
    .unwrap();
    assert_eq!(by_id["inferenceProfileId"], id);
    assert_eq!(
        by_id["inferenceProfileName"],
        "US Anthropic Claude 3.5 Sonnet v2"
    );
    let arn = by_id["inferenceProfileArn"].as_str().unwrap().to_owned();
    let by_arn = call(
        "us-east-1",
        "GetInferenceProfile",
        json!({"inferenceProfileIdentifier": arn}),
    )
    .await
    .unwrap();
    assert_eq!(by_arn, by_id);
    // The same document as the listing's entry.
    let list = call("us-east-1", "ListInferenceProfiles", json!({}))
        .await
        .unwrap();
    let entry = list["inferenceProfileSummaries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["inferenceProfileId"] == id)
        .unwrap();
    assert_eq!(entry, &by_id);

    for bad in [
        "us.acme.nothing-v1",
        "anthropic.claude-3-5-sonnet-20241022-v2:0",
        "us.amazon.titan-text-express-v1",
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123",
    ] {
        let e = call(
            "us-east-1",
            "GetInferenceProfile",
            json!({"inferenceProfileIdentifier": bad}),
        )
        .await
        .unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.status),
            ("ResourceNotFoundException", 404),
            "{bad}"
        );
        assert!(e.message.contains(bad));
    }
}

#[test]
fn profiles_name_catalog_chat_models() {
    for (id, geos) in INFERENCE_PROFILES {
        let f = catalog::find(id).unwrap_or_else(|| panic!("{id} not in the catalog"));
        assert_eq!(f.id, *id);
        assert!(catalog::is_text_model(id), "{id}");
        assert!(!geos.is_empty());
    }
    assert_eq!(
        profiles_in("us-east-1").len(),
        INFERENCE_PROFILES
            .iter()
            .filter(|(_, g)| g.contains(&US))
            .count()
            + INFERENCE_PROFILES
                .iter()
                .filter(|(_, g)| g.contains(&GLOBAL))
                .count()
    );
}

#[tokio::test]
async fn other_operations_not_implemented() {
    for op in [
        "CreateModelCustomizationJob",
        "ListCustomModels",
        "CreateInferenceProfile",
    ] {
        let e = call("us-east-1", op, json!({})).await.unwrap_err();
        assert_eq!(e.code, "NotImplemented");
        assert_eq!(e.status, 501);
        assert!(e.message.contains(op) && e.message.contains("bedrock"));
    }
}

/// One service over one store, so that guardrail calls see each other's writes.
fn guardrail_service() -> Bedrock {
    Bedrock::new(basalt_bedrock_runtime::guardrails::Guardrails::new(
        std::sync::Arc::new(basalt_store::MemoryState::default()),
    ))
}

async fn guard(b: &Bedrock, op: &str, input: Value) -> Result<Value, AwsError> {
    b.call(&ctx("us-east-1"), op, input).await.map(|o| o.body)
}

fn seed_guardrail(name: &str) -> Value {
    json!({
        "name": name,
        "blockedInputMessaging": "no",
        "blockedOutputsMessaging": "no",
        "wordPolicyConfig": {"wordsConfig": [{"text": "alpha"}]},
    })
}

#[tokio::test]
async fn guardrail_versions_are_snapshots_and_numbers_never_reused() {
    let b = guardrail_service();
    let created = guard(&b, "CreateGuardrail", seed_guardrail("g1"))
        .await
        .unwrap();
    let id = created["guardrailId"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 12);
    let v1 = guard(
        &b,
        "CreateGuardrailVersion",
        json!({"guardrailIdentifier": id}),
    )
    .await
    .unwrap();
    assert_eq!(v1["version"], "1");
    let mut update = seed_guardrail("g1");
    update["guardrailIdentifier"] = json!(id);
    update["wordPolicyConfig"] = json!({"wordsConfig": [{"text": "beta"}]});
    guard(&b, "UpdateGuardrail", update).await.unwrap();
    let got = guard(
        &b,
        "GetGuardrail",
        json!({"guardrailIdentifier": id, "guardrailVersion": "1"}),
    )
    .await
    .unwrap();
    assert_eq!(got["wordPolicy"]["words"][0]["text"], "alpha");
    let draft = guard(&b, "GetGuardrail", json!({"guardrailIdentifier": id}))
        .await
        .unwrap();
    assert_eq!(draft["wordPolicy"]["words"][0]["text"], "beta");
    guard(
        &b,
        "CreateGuardrailVersion",
        json!({"guardrailIdentifier": id}),
    )
    .await
    .unwrap();
    guard(
        &b,
        "DeleteGuardrail",
        json!({"guardrailIdentifier": id, "guardrailVersion": "2"}),
    )
    .await
    .unwrap();
    let v3 = guard(
        &b,
        "CreateGuardrailVersion",
        json!({"guardrailIdentifier": id}),
    )
    .await
    .unwrap();
    assert_eq!(v3["version"], "3");
    let listed = guard(&b, "ListGuardrails", json!({"guardrailIdentifier": id}))
        .await
        .unwrap();
    assert_eq!(ids(&listed, "guardrails", "version"), ["DRAFT", "1", "3"]);
}

#[tokio::test]
async fn guardrail_names_free_up_on_delete_and_rename() {
    let b = guardrail_service();
    let a = guard(&b, "CreateGuardrail", seed_guardrail("name-a"))
        .await
        .unwrap();
    let err = guard(&b, "CreateGuardrail", seed_guardrail("name-a"))
        .await
        .unwrap_err();
    assert_eq!(err.code, "ConflictException");
    let mut rename = seed_guardrail("name-b");
    rename["guardrailIdentifier"] = a["guardrailId"].clone();
    guard(&b, "UpdateGuardrail", rename).await.unwrap();
    // The old name is free again, the new one taken.
    let c = guard(&b, "CreateGuardrail", seed_guardrail("name-a"))
        .await
        .unwrap();
    let err = guard(&b, "CreateGuardrail", seed_guardrail("name-b"))
        .await
        .unwrap_err();
    assert_eq!(err.code, "ConflictException");
    guard(
        &b,
        "DeleteGuardrail",
        json!({"guardrailIdentifier": a["guardrailId"]}),
    )
    .await
    .unwrap();
    guard(&b, "CreateGuardrail", seed_guardrail("name-b"))
        .await
        .unwrap();
    let err = guard(
        &b,
        "GetGuardrail",
        json!({"guardrailIdentifier": a["guardrailId"]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "ResourceNotFoundException");
    assert!(
        c["guardrailArn"]
            .as_str()
            .unwrap()
            .ends_with(c["guardrailId"].as_str().unwrap())
    );
}

#[tokio::test]
async fn guardrail_validation_and_tags() {
    let b = guardrail_service();
    let mut bad = seed_guardrail("bad");
    bad["contentPolicyConfig"] = json!({"filtersConfig": [
        {"type": "PROMPT_ATTACK", "inputStrength": "HIGH", "outputStrength": "LOW"}]});
    let err = guard(&b, "CreateGuardrail", bad).await.unwrap_err();
    assert_eq!(err.code, "ValidationException");
    let g = guard(&b, "CreateGuardrail", seed_guardrail("tagged"))
        .await
        .unwrap();
    let arn = g["guardrailArn"].clone();
    guard(
        &b,
        "TagResource",
        json!({"resourceARN": arn, "tags": [{"key": "k", "value": "v"}]}),
    )
    .await
    .unwrap();
    let tags = guard(&b, "ListTagsForResource", json!({"resourceARN": arn}))
        .await
        .unwrap();
    assert_eq!(tags["tags"], json!([{"key": "k", "value": "v"}]));
    let err = guard(
        &b,
        "ListTagsForResource",
        json!({"resourceARN": "arn:aws:bedrock:us-east-1:123456789012:guardrail/nope"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "ResourceNotFoundException");
}
