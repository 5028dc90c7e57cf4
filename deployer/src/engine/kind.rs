//! The kinds of resource a stage is made of. Every place that acts on a kind
//! matches this enum exhaustively, so a new kind does not compile until the
//! planner, both targets, observation, discovery and synth handle it. In state
//! files and JSON output a kind is its snake_case name (`rest_api`), as before.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Role,
    Bucket,
    Function,
    RestApi,
    ApiResource,
    Method,
    Permission,
    GatewayResponses,
    Deployment,
    /// A function's CloudWatch Logs group, made by the deploy (with its
    /// retention) so that destroy removes it.
    LogGroup,
    /// An EventBridge rule invoking a function on a schedule, with its target
    /// and the function's permission for EventBridge.
    Schedule,
    /// A stage deployed by the CloudFormation engine: the stack that owns it.
    CloudformationStack,
}

impl Kind {
    /// Every kind, for tests and documentation.
    pub const ALL: [Kind; 12] = [
        Kind::Role,
        Kind::Bucket,
        Kind::Function,
        Kind::RestApi,
        Kind::ApiResource,
        Kind::Method,
        Kind::Permission,
        Kind::GatewayResponses,
        Kind::Deployment,
        Kind::LogGroup,
        Kind::Schedule,
        Kind::CloudformationStack,
    ];

    /// The serialised name (`rest_api`), for display.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Role => "role",
            Kind::Bucket => "bucket",
            Kind::Function => "function",
            Kind::RestApi => "rest_api",
            Kind::ApiResource => "api_resource",
            Kind::Method => "method",
            Kind::Permission => "permission",
            Kind::GatewayResponses => "gateway_responses",
            Kind::Deployment => "deployment",
            Kind::LogGroup => "log_group",
            Kind::Schedule => "schedule",
            Kind::CloudformationStack => "cloudformation_stack",
        }
    }

    /// Objects that live inside the REST API and go with it.
    pub fn inside_api(self) -> bool {
        match self {
            Kind::ApiResource | Kind::Method | Kind::GatewayResponses | Kind::Deployment => true,
            Kind::Role | Kind::Bucket | Kind::Function | Kind::RestApi | Kind::Permission | Kind::LogGroup | Kind::Schedule | Kind::CloudformationStack => false,
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Kind;

    #[test]
    fn names_are_the_serialised_form() {
        for k in Kind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), serde_json::Value::String(k.as_str().into()));
            assert_eq!(serde_json::from_value::<Kind>(serde_json::Value::String(k.as_str().into())).unwrap(), k);
        }
        assert!(serde_json::from_str::<Kind>("\"queue\"").is_err(), "an unknown kind is refused, never dropped");
    }
}
