//! The stack file exactly as written: serde types that mirror the YAML, with the
//! source location of every value later checks need to point at. `deny_unknown_fields`
//! everywhere, so a typo is an error rather than a silently ignored key. The JSON
//! Schema published by `stackctl schema` is derived from these same types, so the
//! editor's completion and the parser can never disagree.

use std::fmt;
use std::marker::PhantomData;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A string with the place it was written.
pub type Name = Spanned<String>;

/// A mapping whose keys keep their location and whose order is kept as written.
/// Duplicate keys are left in so validation can report both places.
#[derive(Debug, Clone)]
pub struct Entries<T>(pub Vec<(Name, T)>);

impl<T> Default for Entries<T> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<T> Entries<T> {
    pub fn iter(&self) -> impl Iterator<Item = (&Name, &T)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
    pub fn get(&self, key: &str) -> Option<&T> {
        self.0.iter().find(|(k, _)| k.value == key).map(|(_, v)| v)
    }
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.value.as_str())
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Entries<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for EntriesVisitor<T> {
            type Value = Entries<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Entries::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<Name>()? {
                    let value = map.next_value::<T>()?;
                    out.push((key, value));
                }
                Ok(Entries(out))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for Entries<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Map_of_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let value = generator.subschema_for::<T>();
        schemars::json_schema!({
            "type": "object",
            "additionalProperties": value,
        })
    }
}

/// One stack file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "stackctl stack file")]
pub struct StackFile {
    /// Name of the stack: lowercase letters, digits and dashes. Physical names are
    /// `{stack}-{stage}-{resource}`.
    #[schemars(with = "String")]
    pub stack: Name,
    /// Free text, shown by `stackctl status`.
    #[serde(default)]
    pub description: Option<String>,
    /// AWS region; defaults to the region of the AWS configuration (or eu-central-1 locally).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub region: Option<Name>,
    /// Values resolved at deploy time from the deployer's environment (never from the file).
    #[serde(default)]
    pub parameters: Entries<Parameter>,
    /// S3 buckets, by logical name.
    #[serde(default)]
    pub buckets: Entries<Bucket>,
    /// Lambda functions, by logical name.
    #[serde(default)]
    pub functions: Entries<Function>,
    /// Days CloudWatch Logs keeps the functions' logs, unless a function says
    /// otherwise (default 14; one of CloudWatch's values: 1, 3, 5, 7, 14, 30, 60,
    /// 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub log_retention_days: Option<Spanned<u32>>,
    /// The REST API (API Gateway v1) in front of the functions.
    #[serde(default)]
    pub api: Option<Api>,
    /// Where the deployed state of each stage is recorded.
    #[serde(default)]
    pub state: Option<StateConfig>,
}

/// A deploy-time value.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    #[serde(default)]
    pub description: Option<String>,
    /// Environment variable of the deployer's shell that holds the value.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub env: Option<Name>,
    /// Value used when the environment variable is unset.
    #[serde(default)]
    pub default: Option<String>,
    /// A secret is never printed, logged or written to state in clear.
    #[serde(default)]
    pub secret: bool,
    /// Generate a random value once per stage when none is given (for signing keys).
    #[serde(default)]
    pub generate: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    /// Lifecycle rules (expiration of current object versions).
    #[serde(default)]
    pub lifecycle: Vec<LifecycleRule>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LifecycleRule {
    /// Rule id, unique within the bucket.
    #[schemars(with = "String")]
    pub id: Name,
    /// Only objects under this key prefix expire; empty = the whole bucket.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Days after creation before the object is deleted (S3 counts in whole days).
    #[schemars(with = "u32", range(min = 1))]
    pub expiration_days: Spanned<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Function {
    /// Path of the function's crate, relative to the workspace root.
    #[serde(rename = "crate")]
    #[schemars(with = "String")]
    pub crate_path: Name,
    /// Binary to package as `bootstrap`; defaults to the crate's package name.
    #[serde(default)]
    pub binary: Option<String>,
    /// Memory in MB (128 to 10240).
    #[serde(default)]
    #[schemars(with = "Option<u32>", range(min = 128, max = 10240))]
    pub memory: Option<Spanned<u32>>,
    /// Timeout in seconds (1 to 900).
    #[serde(default)]
    #[schemars(with = "Option<u32>", range(min = 1, max = 900))]
    pub timeout: Option<Spanned<u32>>,
    /// Instruction set: x86_64 (default) or arm64.
    #[serde(default)]
    pub architecture: Option<Architecture>,
    /// Days CloudWatch Logs keeps this function's logs (default: the stack's
    /// `log_retention_days`, else 14). The log group is created by the deploy
    /// and removed by `destroy`.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub log_retention_days: Option<Spanned<u32>>,
    /// Environment variables: a literal string, or a reference
    /// (`{ function: NAME }`, `{ bucket: NAME }`, `{ parameter: NAME }`).
    #[serde(default)]
    pub environment: Entries<EnvValue>,
    /// What the function may do besides writing its own logs.
    #[serde(default)]
    pub permissions: Option<Permissions>,
    /// When EventBridge invokes the function, in UTC: `rate(5 minutes)`,
    /// `cron(0 12 * * ? *)`, or a list of them. Each is a rule of its own.
    #[serde(default)]
    #[schemars(with = "Option<OneOrMany>")]
    pub schedule: Option<Spanned<OneOrMany>>,
    /// Concurrent executions reserved for the function, out of the account's
    /// pool; also its ceiling (0 stops it from running).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub reserved_concurrency: Option<Spanned<u32>>,
}

/// One string or a list of strings.
#[derive(Debug, Clone, Default)]
pub struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_owned()]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(OneOrMany(out))
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl JsonSchema for OneOrMany {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "OneOrMany".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "oneOf": [ { "type": "string" }, { "type": "array", "items": { "type": "string" }, "minItems": 1 } ] })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(alias = "aarch64")]
    Arm64,
}

/// An environment variable's value.
#[derive(Debug)]
pub enum EnvValue {
    Literal(String),
    /// Physical name of a function of this stack.
    Function(Name),
    /// Physical name of a bucket of this stack.
    Bucket(Name),
    /// Value of a parameter.
    Parameter(Name),
}

impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EnvValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, or one of `{ function: NAME }`, `{ bucket: NAME }`, `{ parameter: NAME }`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EnvValue, E> {
                Ok(EnvValue::Literal(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<EnvValue, E> {
                Ok(EnvValue::Literal(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<EnvValue, E> {
                Ok(EnvValue::Literal(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<EnvValue, E> {
                Ok(EnvValue::Literal(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<EnvValue, E> {
                Ok(EnvValue::Literal(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<EnvValue, E> {
                Ok(EnvValue::Literal(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EnvValue, A::Error> {
                let Some(kind) = map.next_key::<String>()? else {
                    return Err(de::Error::custom(
                        "empty reference: write `{ function: NAME }`, `{ bucket: NAME }` or `{ parameter: NAME }`",
                    ));
                };
                let target: Name = map.next_value()?;
                let value = match kind.as_str() {
                    "function" => EnvValue::Function(target),
                    "bucket" => EnvValue::Bucket(target),
                    "parameter" => EnvValue::Parameter(target),
                    _ => return Err(de::Error::unknown_field(&kind, REFERENCE_KINDS)),
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(de::Error::custom(format_args!(
                        "a reference has exactly one key; remove `{extra}`"
                    )));
                }
                Ok(value)
            }
        }
        deserializer.deserialize_any(V)
    }
}

pub const REFERENCE_KINDS: &[&str] = &["function", "bucket", "parameter"];

impl JsonSchema for EnvValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "EnvValue".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let reference = |kind: &str, what: &str| {
            schemars::json_schema!({
                "type": "object",
                "description": what,
                "properties": { kind: { "type": "string" } },
                "required": [kind],
                "additionalProperties": false,
            })
        };
        schemars::json_schema!({
            "description": "A literal string or a reference resolved at deploy time",
            "oneOf": [
                { "type": ["string", "number", "boolean"] },
                reference("function", "Physical name of a function of this stack"),
                reference("bucket", "Physical name of a bucket of this stack"),
                reference("parameter", "Value of a parameter of this stack"),
            ]
        })
    }
}

/// Permissions as intent; stackctl turns them into one least-privilege IAM policy.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    /// Functions of this stack this function may invoke (`lambda:InvokeFunction`).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub invoke: Vec<Name>,
    /// Object access to buckets of this stack.
    #[serde(default)]
    pub buckets: Vec<BucketGrant>,
    /// Any other AWS permission, as IAM statements (always `Allow`). Actions are
    /// checked against IAM's list of actions, resources against each action's
    /// resource types; a wildcard needs `allow_wildcard: "why"`.
    #[serde(default)]
    pub statements: Vec<Statement>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BucketGrant {
    /// Logical name of a bucket of this stack.
    #[schemars(with = "String")]
    pub bucket: Name,
    /// One level or a list of them: `read` (s3:GetObject), `write` (s3:PutObject),
    /// `delete` (s3:DeleteObject), `list` (s3:ListBucket, only under the prefix);
    /// `read-write` is `[read, write]`.
    pub access: AccessList,
    /// Restrict the grant to keys under this prefix.
    #[serde(default)]
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    Read,
    Write,
    Delete,
    List,
    ReadWrite,
}

/// `access: read` or `access: [read, list]`.
#[derive(Debug)]
pub struct AccessList(pub Vec<Access>);

impl<'de> Deserialize<'de> for AccessList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AccessList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an access level (`read`, `write`, `delete`, `list`) or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AccessList, E> {
                Access::deserialize(de::value::StrDeserializer::<E>::new(v)).map(|a| AccessList(vec![a]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<AccessList, A::Error> {
                let mut out = Vec::new();
                while let Some(level) = seq.next_element::<Access>()? {
                    out.push(level);
                }
                Ok(AccessList(out))
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl JsonSchema for AccessList {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AccessList".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let level = generator.subschema_for::<Access>();
        schemars::json_schema!({
            "description": "An access level or a list of them",
            "oneOf": [ level, { "type": "array", "items": level, "minItems": 1 } ],
        })
    }
}

/// One IAM statement of the escape hatch.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// Statement id (letters and digits); default `Statement{N}`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub sid: Option<Name>,
    /// IAM actions, `service:Action` (e.g. `dynamodb:GetItem`).
    #[schemars(with = "Vec<String>")]
    pub actions: Spanned<Vec<Name>>,
    /// Resource ARNs. `${account}`, `${region}`, `${stage}`, `${stack}`,
    /// `${function:NAME}` and `${bucket:NAME}` are replaced at deploy time;
    /// IAM's own `${aws:...}` variables are kept.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub resources: Option<Spanned<Vec<Name>>>,
    /// IAM condition block, as in a policy: `{ StringEquals: { "key": "value" } }`.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub condition: Option<Spanned<serde_json::Value>>,
    /// Why this statement needs a wildcard action or resource (required for one).
    #[serde(default)]
    pub allow_wildcard: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Api {
    /// API name; defaults to the stack name. The physical name adds the stage.
    #[serde(default)]
    pub name: Option<String>,
    /// `edge` (edge-optimised, the console default) or `regional`.
    #[serde(default)]
    pub endpoint: Option<EndpointType>,
    /// CORS settings used by every route with `cors: true`.
    #[serde(default)]
    pub cors: Option<CorsConfig>,
    /// Resource paths (starting with `/`) and their methods.
    #[schemars(with = "Entries<Route>")]
    pub routes: Spanned<Entries<Route>>,
    /// Stage variables (`$stageVariables` in mapping templates, `stageVariables`
    /// in proxy events), by stage name; `default` applies to every stage not listed.
    #[serde(default)]
    pub stage_variables: Entries<Entries<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointType {
    Edge,
    Regional,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Value of Access-Control-Allow-Origin; default `*`.
    #[serde(default)]
    pub allow_origin: Option<String>,
    /// Access-Control-Allow-Headers; default the console's list.
    #[serde(default)]
    pub allow_headers: Option<Vec<String>>,
    /// Access-Control-Max-Age in seconds.
    #[serde(default)]
    pub max_age: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Answer CORS preflight (OPTIONS) and add CORS headers to responses.
    #[serde(default)]
    pub cors: bool,
    /// HTTP methods (GET, POST, PUT, PATCH, DELETE, HEAD, ANY).
    pub methods: Entries<Method>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Method {
    /// Logical name of the function this method invokes.
    #[schemars(with = "String")]
    pub function: Name,
    /// `proxy` (AWS_PROXY, the default) or `aws` (non-proxy, with mapping templates).
    #[serde(default)]
    #[schemars(with = "Option<Integration>")]
    pub integration: Option<Spanned<Integration>>,
    /// Request mapping templates by content type (non-proxy integrations only).
    #[serde(default)]
    #[schemars(with = "Entries<String>")]
    pub request_templates: Option<Spanned<Entries<String>>>,
    /// Method request parameters, `querystring.NAME`, `header.NAME` or
    /// `path.NAME`: `required` or `optional`. API Gateway answers 400
    /// `Missing required request parameters: [NAME]` when a required one is
    /// absent or blank, before the function runs.
    #[serde(default)]
    #[schemars(with = "Entries<Requirement>")]
    pub request_parameters: Entries<Spanned<Requirement>>,
    /// JSON Schemas (draft 4) request bodies must match, by content type
    /// (`application/json`; `$default` for any other). API Gateway answers 400
    /// `Invalid request body` to a body that does not; a content type with no
    /// schema is not checked.
    #[serde(default)]
    #[schemars(with = "Entries<serde_json::Value>")]
    pub request_models: Entries<Spanned<serde_json::Value>>,
    /// Integration responses of an `aws` integration: the status each outcome
    /// gets, with its response templates and headers. The one without
    /// `pattern` is the default (the function's result); a function error goes
    /// to the first whose pattern matches all of its `errorMessage`. Default:
    /// 200, plus 202/400/404/410/500 for errors whose message carries
    /// `"status":N`.
    #[serde(default)]
    #[schemars(with = "Option<Vec<IntegrationResponse>>")]
    pub responses: Option<Spanned<Vec<IntegrationResponse>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Requirement {
    Required,
    Optional,
}

/// One integration response (and the method response it fills).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationResponse {
    /// HTTP status of the method response (100 to 599).
    #[schemars(with = "u16")]
    pub status: Spanned<u16>,
    /// Regular expression that must match all of the function's `errorMessage`
    /// (`.*"status":404.*`); none: the default response.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub pattern: Option<Name>,
    /// Response mapping templates by content type; none passes the function's
    /// answer through. `#set($context.responseOverride.status = N)` works.
    #[serde(default)]
    #[schemars(with = "Entries<String>")]
    pub templates: Entries<String>,
    /// Response headers and where each value comes from, as API Gateway
    /// writes it: `'a literal'`, `integration.response.body.FIELD`,
    /// `integration.response.header.NAME`, `context.VAR`, `stageVariables.NAME`.
    #[serde(default)]
    #[schemars(with = "Entries<String>")]
    pub headers: Entries<Name>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Integration {
    Proxy,
    Aws,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// `local` (a file under .stackctl/, the default) or `s3`.
    #[serde(default)]
    pub backend: Option<StateBackend>,
    /// Bucket of the S3 backend (created outside this stack).
    #[serde(default)]
    pub bucket: Option<String>,
    /// Key prefix of the S3 backend.
    #[serde(default)]
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StateBackend {
    Local,
    S3,
}
