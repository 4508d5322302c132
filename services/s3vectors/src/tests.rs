use super::*;
use serde_json::json;

fn ctx() -> RequestContext {
    RequestContext::internal("111122223333", "us-east-1", "")
}

async fn call(s: &S3Vectors, op: &str, input: Value) -> Result<Value, AwsError> {
    s.call(&ctx(), op, input).await.map(|o| o.body)
}

#[tokio::test]
async fn vectors_round_trip_and_query_with_filters() {
    let s = S3Vectors::new(Arc::new(basalt_store::MemoryState::default()));
    call(
        &s,
        "CreateVectorBucket",
        json!({"vectorBucketName": "vb-1"}),
    )
    .await
    .unwrap();
    let created = call(
        &s,
        "CreateIndex",
        json!({
        "vectorBucketName": "vb-1", "indexName": "idx", "dataType": "float32", "dimension": 3,
        "distanceMetric": "cosine",
        "metadataConfiguration": {"nonFilterableMetadataKeys": ["text"]}}),
    )
    .await
    .unwrap();
    assert_eq!(
        created["indexArn"],
        "arn:aws:s3vectors:us-east-1:111122223333:bucket/vb-1/index/idx"
    );
    let vectors: Vec<Value> = (0..30)
        .map(|i| json!({"key": format!("v{i:02}"), "data": {"float32": [1.0, i as f64 / 10.0, 0.5]},
                        "metadata": {"genre": if i % 2 == 0 { "even" } else { "odd" }, "n": i, "text": "t"}}))
        .collect();
    call(
        &s,
        "PutVectors",
        json!({"vectorBucketName": "vb-1", "indexName": "idx", "vectors": vectors}),
    )
    .await
    .unwrap();
    let q = call(
        &s,
        "QueryVectors",
        json!({"indexArn": created["indexArn"], "topK": 3,
        "queryVector": {"float32": [1.0, 0.0, 0.5]}, "filter": {"genre": "odd", "n": {"$gte": 5}},
        "returnDistance": true, "returnMetadata": true}),
    )
    .await
    .unwrap();
    let keys: Vec<&str> = q["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["v05", "v07", "v09"]);
    assert_eq!(q["distanceMetric"], "cosine");
    assert_eq!(q["vectors"][0]["metadata"]["text"], "t");
    // A non-filterable key is not filterable.
    let none = call(
        &s,
        "QueryVectors",
        json!({"vectorBucketName": "vb-1", "indexName": "idx", "topK": 3,
        "queryVector": {"float32": [1.0, 0.0, 0.5]}, "filter": {"text": "t"}}),
    )
    .await
    .unwrap();
    assert_eq!(none["vectors"], json!([]));
    // Wrong dimension, zero vector.
    for bad in [json!([1.0, 2.0]), json!([0.0, 0.0, 0.0])] {
        let e = call(
            &s,
            "PutVectors",
            json!({"vectorBucketName": "vb-1", "indexName": "idx",
            "vectors": [{"key": "x", "data": {"float32": bad}}]}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "ValidationException");
    }
    let got = call(
        &s,
        "GetVectors",
        json!({"vectorBucketName": "vb-1", "indexName": "idx",
        "keys": ["v01", "missing"], "returnData": true}),
    )
    .await
    .unwrap();
    assert_eq!(got["vectors"].as_array().unwrap().len(), 1);
    assert_eq!(
        got["vectors"][0]["data"]["float32"],
        json!([1.0, 0.1f32 as f64, 0.5])
    );
    call(
        &s,
        "DeleteVectors",
        json!({"vectorBucketName": "vb-1", "indexName": "idx", "keys": ["v05"]}),
    )
    .await
    .unwrap();
    let q = call(
        &s,
        "QueryVectors",
        json!({"vectorBucketName": "vb-1", "indexName": "idx", "topK": 1,
        "queryVector": {"float32": [1.0, 0.5, 0.5]}, "filter": {"n": 5}}),
    )
    .await
    .unwrap();
    assert_eq!(q["vectors"], json!([]));
    // Listing in pages and in disjoint segments covers every key once.
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = json!({"vectorBucketName": "vb-1", "indexName": "idx", "maxResults": 7});
        if let Some(t) = &token {
            req["nextToken"] = t.clone().into();
        }
        let page = call(&s, "ListVectors", req).await.unwrap();
        all.extend(
            page["vectors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["key"].as_str().unwrap().to_owned()),
        );
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(all.len(), 29);
    let mut segmented = Vec::new();
    for i in 0..3 {
        let page = call(
            &s,
            "ListVectors",
            json!({"vectorBucketName": "vb-1", "indexName": "idx",
            "segmentCount": 3, "segmentIndex": i}),
        )
        .await
        .unwrap();
        segmented.extend(
            page["vectors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["key"].as_str().unwrap().to_owned()),
        );
    }
    segmented.sort();
    assert_eq!(segmented, all);
}

#[tokio::test]
async fn names_conflicts_and_deletes() {
    let s = S3Vectors::new(Arc::new(basalt_store::MemoryState::default()));
    for bad in ["ab", "Upper", "-lead", "trail-", "under_score"] {
        let e = call(&s, "CreateVectorBucket", json!({"vectorBucketName": bad}))
            .await
            .unwrap_err();
        assert_eq!(e.code, "ValidationException", "{bad}");
    }
    call(&s, "CreateVectorBucket", json!({"vectorBucketName": "vb"}))
        .await
        .unwrap_err();
    call(
        &s,
        "CreateVectorBucket",
        json!({"vectorBucketName": "vb-2"}),
    )
    .await
    .unwrap();
    let e = call(
        &s,
        "CreateVectorBucket",
        json!({"vectorBucketName": "vb-2"}),
    )
    .await
    .unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (409, "ConflictException"));
    let idx = json!({"vectorBucketName": "vb-2", "indexName": "i-1", "dataType": "float32",
        "dimension": 2, "distanceMetric": "euclidean"});
    call(&s, "CreateIndex", idx.clone()).await.unwrap();
    assert_eq!(
        call(&s, "CreateIndex", idx.clone()).await.unwrap_err().code,
        "ConflictException"
    );
    call(
        &s,
        "PutVectors",
        json!({"vectorBucketName": "vb-2", "indexName": "i-1",
        "vectors": [{"key": "a", "data": {"float32": [3.0, 4.0]}}]}),
    )
    .await
    .unwrap();
    let q = call(
        &s,
        "QueryVectors",
        json!({"vectorBucketName": "vb-2", "indexName": "i-1", "topK": 1,
        "queryVector": {"float32": [0.0, 0.0]}, "returnDistance": true}),
    )
    .await
    .unwrap();
    assert!((q["vectors"][0]["distance"].as_f64().unwrap() - 5.0).abs() < 1e-6);
    let e = call(
        &s,
        "DeleteVectorBucket",
        json!({"vectorBucketName": "vb-2"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "ConflictException");
    call(
        &s,
        "DeleteIndex",
        json!({"vectorBucketName": "vb-2", "indexName": "i-1"}),
    )
    .await
    .unwrap();
    // Created again under the same name, the index starts empty.
    call(&s, "CreateIndex", idx).await.unwrap();
    let q = call(
        &s,
        "QueryVectors",
        json!({"vectorBucketName": "vb-2", "indexName": "i-1", "topK": 1,
        "queryVector": {"float32": [0.0, 0.0]}}),
    )
    .await
    .unwrap();
    assert_eq!(q["vectors"], json!([]));
    let e = call(
        &s,
        "GetIndex",
        json!({"vectorBucketName": "vb-2", "indexName": "nope"}),
    )
    .await
    .unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (404, "NotFoundException"));
}
