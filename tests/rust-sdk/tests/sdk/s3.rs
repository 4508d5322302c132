//! The AWS SDK for Rust against a real Basalt server: the S3 behaviours the boto3 suite
//! covers, seen by a second, independently written client.

use crate::common;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use md5::{Digest, Md5};

use common::{Data, start};

fn s3(endpoint: &str) -> aws_sdk_s3::Client {
    s3_in(endpoint, "us-east-1")
}

fn s3_in(endpoint: &str, region: &'static str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .endpoint_url(endpoint)
        .region(aws_sdk_s3::config::Region::new(region))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_objects_listing_multipart_and_errors() {
    let Some(server) = start(Data::TempDir, &[]) else {
        return;
    };
    let c = s3(&server.endpoint);
    c.create_bucket().bucket("sdk-bucket").send().await.unwrap();
    // AWS's legacy us-east-1 rule: re-creating a bucket you own answers 200 there...
    c.create_bucket().bucket("sdk-bucket").send().await.unwrap();
    // ...and BucketAlreadyOwnedByYou in every other region.
    let eu = s3_in(&server.endpoint, "eu-west-1");
    let cfg = aws_sdk_s3::types::CreateBucketConfiguration::builder()
        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
        .build();
    eu.create_bucket()
        .bucket("sdk-eu")
        .create_bucket_configuration(cfg.clone())
        .send()
        .await
        .unwrap();
    let err = eu
        .create_bucket()
        .bucket("sdk-eu")
        .create_bucket_configuration(cfg)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.into_service_error().meta().code(),
        Some("BucketAlreadyOwnedByYou")
    );
    let loc = eu
        .get_bucket_location()
        .bucket("sdk-eu")
        .send()
        .await
        .unwrap();
    assert_eq!(
        loc.location_constraint(),
        Some(&aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
    );

    let body = b"hello from the rust sdk".to_vec();
    let put = c
        .put_object()
        .bucket("sdk-bucket")
        .key("dir/a.txt")
        .body(ByteStream::from(body.clone()))
        .content_type("text/plain")
        .metadata("color", "blue")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.e_tag(),
        Some(format!("\"{}\"", hex::encode(Md5::digest(&body))).as_str())
    );

    let got = c
        .get_object()
        .bucket("sdk-bucket")
        .key("dir/a.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("text/plain"));
    assert_eq!(
        got.metadata().unwrap().get("color").map(String::as_str),
        Some("blue")
    );
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        body.as_slice()
    );

    let ranged = c
        .get_object()
        .bucket("sdk-bucket")
        .key("dir/a.txt")
        .range("bytes=0-4")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.content_range(), Some("bytes 0-4/23"));
    assert_eq!(
        ranged.body.collect().await.unwrap().into_bytes().as_ref(),
        b"hello"
    );

    for k in ["dir/b.txt", "dir/sub/c.txt", "top.txt"] {
        c.put_object()
            .bucket("sdk-bucket")
            .key(k)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
    let listed = c
        .list_objects_v2()
        .bucket("sdk-bucket")
        .prefix("dir/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, vec!["dir/a.txt", "dir/b.txt"]);
    let prefixes: Vec<&str> = listed
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, vec!["dir/sub/"]);

    let page = c
        .list_objects_v2()
        .bucket("sdk-bucket")
        .max_keys(2)
        .send()
        .await
        .unwrap();
    assert_eq!(page.key_count(), Some(2));
    assert_eq!(page.is_truncated(), Some(true));
    let rest = c
        .list_objects_v2()
        .bucket("sdk-bucket")
        .continuation_token(page.next_continuation_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.contents().len(), 2);

    let err = c
        .get_object()
        .bucket("sdk-bucket")
        .key("missing")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_no_such_key());
    let err = c
        .get_object()
        .bucket("no-such-bucket-x")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.into_service_error().meta().code(), Some("NoSuchBucket"));

    // Multipart: two 5 MiB parts and a small last part; ETag is md5-of-md5s-N.
    let up = c
        .create_multipart_upload()
        .bucket("sdk-bucket")
        .key("big")
        .send()
        .await
        .unwrap();
    let upload_id = up.upload_id().unwrap();
    let parts_data = [
        vec![1u8; 5 * 1024 * 1024],
        vec![2u8; 5 * 1024 * 1024],
        vec![3u8; 1000],
    ];
    let mut parts = Vec::new();
    let mut md5s = Vec::new();
    for (i, data) in parts_data.iter().enumerate() {
        let n = i as i32 + 1;
        let r = c
            .upload_part()
            .bucket("sdk-bucket")
            .key("big")
            .upload_id(upload_id)
            .part_number(n)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        md5s.extend_from_slice(&Md5::digest(data));
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().unwrap())
                .build(),
        );
    }
    let done = c
        .complete_multipart_upload()
        .bucket("sdk-bucket")
        .key("big")
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        done.e_tag(),
        Some(format!("\"{}-3\"", hex::encode(Md5::digest(&md5s))).as_str())
    );
    let head = c
        .head_object()
        .bucket("sdk-bucket")
        .key("big")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(10 * 1024 * 1024 + 1000));

    let err = c
        .delete_bucket()
        .bucket("sdk-bucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.into_service_error().meta().code(),
        Some("BucketNotEmpty")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sts_identity_and_assumed_role() {
    let Some(server) = start(Data::TempDir, &[]) else {
        return;
    };
    let conf = aws_sdk_sts::Config::builder()
        .endpoint_url(&server.endpoint)
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .build();
    let sts = aws_sdk_sts::Client::from_conf(conf);
    let me = sts.get_caller_identity().send().await.unwrap();
    assert_eq!(me.account(), Some("000000000000"));
    let role = sts
        .assume_role()
        .role_arn("arn:aws:iam::000000000000:role/sdk-role")
        .role_session_name("sdk-session")
        .send()
        .await
        .unwrap();
    let creds = role.credentials().unwrap();
    let conf = aws_sdk_sts::Config::builder()
        .endpoint_url(&server.endpoint)
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            creds.access_key_id(),
            creds.secret_access_key(),
            Some(creds.session_token().to_owned()),
            None,
            "assumed",
        ))
        .build();
    let as_role = aws_sdk_sts::Client::from_conf(conf)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(
        as_role.arn(),
        Some("arn:aws:sts::000000000000:assumed-role/sdk-role/sdk-session")
    );
}
