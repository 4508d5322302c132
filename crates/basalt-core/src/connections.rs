//! EventBridge connections as Basalt's own services use them in-process (Step Functions HTTP
//! tasks): how a call authorizes itself and what the connection adds to it, secrets included.
//! The host implements it on EventBridge.

/// A connection's authorization, with its secrets.
#[derive(Debug, Clone, PartialEq)]
pub enum Authorization {
    Basic {
        username: String,
        password: String,
    },
    /// A header named `name` carrying `value`.
    ApiKey {
        name: String,
        value: String,
    },
    /// OAuth 2.0 client credentials: a token from `endpoint`, asked for with `method` and the
    /// connection's own parameters for that request.
    OAuthClientCredentials {
        endpoint: String,
        method: String,
        client_id: String,
        client_secret: String,
        parameters: Parameters,
    },
}

/// Header, query string and body parameters, in the order given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parameters {
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    pub body: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub arn: String,
    /// `AUTHORIZED`, `DEAUTHORIZED`, ...: only an authorized connection may be used.
    pub state: String,
    pub authorization: Authorization,
    /// `InvocationHttpParameters`: added to every call made through the connection.
    pub invocation: Parameters,
}

pub trait InProcessConnections: Send + Sync + 'static {
    /// The connection `arn` names; `Ok(None)` when there is none (in that account and region,
    /// with that id).
    fn connection(&self, arn: &str) -> Result<Option<Connection>, String>;
}
