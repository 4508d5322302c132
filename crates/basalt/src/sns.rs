//! SNS's own URLs under `/_basalt/sns/`: the signing certificate (`SigningCertURL`), the
//! `SubscribeURL` and `UnsubscribeURL` of messages (GET confirms or removes, answering the XML
//! AWS answers), and the records of what email, email-json and SMS endpoints received
//! (`/_basalt/sns/deliveries?endpoint=...`, JSON).

use basalt_sns::{Sns, URL_PATH};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::sync::Arc;

pub struct SnsUrls(pub Arc<Sns>);

fn respond(status: u16, content_type: &str, body: String) -> http::Response<basalt_gateway::Body> {
    http::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(basalt_gateway::full(bytes::Bytes::from(body)))
        .expect("static response")
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn error_xml(e: &basalt_core::AwsError) -> http::Response<basalt_gateway::Body> {
    let code = match e.code.as_str() {
        "InvalidParameterException" => "InvalidParameter",
        "NotFoundException" => "NotFound",
        other => other,
    };
    respond(
        e.status,
        "text/xml",
        format!(
            "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            xml_escape(&e.message),
            basalt_core::ids::request_id()
        ),
    )
}

impl basalt_gateway::RawHandler for SnsUrls {
    fn handle(
        &self,
        req: http::Request<basalt_gateway::RequestBody>,
    ) -> BoxFuture<'static, http::Response<basalt_gateway::Body>> {
        let sns = self.0.clone();
        async move {
            let rest = req
                .uri()
                .path()
                .strip_prefix(URL_PATH)
                .unwrap_or_default()
                .to_owned();
            let query: Vec<(String, String)> =
                form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
                    .into_owned()
                    .collect();
            let param = move |name: &str| {
                query
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            let request_id = basalt_core::ids::request_id();
            tokio::task::spawn_blocking(move || {
                if rest == "deliveries" {
                    return match sns.deliveries(&param("endpoint")) {
                        Ok(list) => respond(
                            200,
                            "application/json",
                            serde_json::json!({ "Deliveries": list }).to_string(),
                        ),
                        Err(e) => error_xml(&e),
                    };
                }
                if rest.ends_with(".pem") {
                    return match (sns.signing_cert_name(), sns.signing_cert_pem()) {
                        (Ok(name), Ok(pem)) if name == rest => {
                            respond(200, "application/x-x509-ca-cert", pem)
                        }
                        (Err(e), _) | (_, Err(e)) => error_xml(&e),
                        _ => respond(404, "text/plain", "Not Found".into()),
                    };
                }
                match param("Action").as_str() {
                    "ConfirmSubscription" => {
                        match sns.confirm_by_url(&param("TopicArn"), &param("Token")) {
                            Ok(arn) => respond(
                                200,
                                "text/xml",
                                format!(
                                    "<ConfirmSubscriptionResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><ConfirmSubscriptionResult><SubscriptionArn>{}</SubscriptionArn></ConfirmSubscriptionResult><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></ConfirmSubscriptionResponse>",
                                    xml_escape(&arn)
                                ),
                            ),
                            Err(e) => error_xml(&e),
                        }
                    }
                    "Unsubscribe" => match sns.unsubscribe_by_url(&param("SubscriptionArn")) {
                        Ok(()) => respond(
                            200,
                            "text/xml",
                            format!(
                                "<UnsubscribeResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></UnsubscribeResponse>"
                            ),
                        ),
                        Err(e) => error_xml(&e),
                    },
                    _ => respond(404, "text/plain", "Not Found".into()),
                }
            })
            .await
            .unwrap_or_else(|_| respond(500, "text/plain", "Internal Server Error".into()))
        }
        .boxed()
    }
}
