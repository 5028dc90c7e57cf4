//! The planner: a pure function from the desired graph, the recorded state and
//! what observation found live, to an ordered list of typed steps. It knows
//! nothing about HTTP; the executor runs exactly the plan and nothing else.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::desired::{Desired, Node, Spec};
use super::kind::Kind;
use super::state::State;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
    NoOp,
}

/// What observation found for a recorded resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Live {
    /// Exists and matches what was recorded.
    Present,
    /// Recorded, but gone (deleted by hand).
    Missing,
    /// Exists but changed by hand; the reason says what differs.
    Drifted(String),
    /// Exists, but the target needs it made again for a reason of its own
    /// (the local API moves to another port); the reason is shown as is.
    Outdated(String),
}

impl Action {
    /// The action's name, as JSON output has it.
    pub fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::NoOp => "no_op",
        }
    }

    /// What a finished step did, for progress lines.
    pub fn past_tense(self) -> &'static str {
        match self {
            Action::Create => "created",
            Action::Update => "updated",
            Action::Replace => "replaced",
            Action::Delete => "deleted",
            Action::NoOp => "kept",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub id: String,
    pub kind: Kind,
    pub action: Action,
    /// For a function update: what changes (code, configuration or both), so
    /// the target makes only the calls needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Why, for display.
    pub reason: String,
    /// Steps (ids) that must finish first.
    pub after: Vec<String>,
    /// 1 + the longest chain of steps before this one: steps of one level can run together.
    pub level: usize,
}

/// What of a function an update changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Scope {
    pub code: bool,
    pub configuration: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    /// Steps that change something.
    pub fn changes(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| s.action != Action::NoOp)
    }
    pub fn is_empty(&self) -> bool {
        self.changes().next().is_none()
    }
    /// Length of the longest chain of dependent changes: the lower bound on the
    /// number of sequential round trips of an apply.
    pub fn depth(&self) -> usize {
        self.changes().map(|s| s.level).max().unwrap_or(0)
    }
    /// The plan's critical path in round trips: the longest chain of dependent
    /// steps, each weighed by the fewest sequential API calls its object needs
    /// (`round_trips`). Times the per-request latency, the lower bound on an
    /// apply's wall time.
    pub fn critical_path(&self) -> usize {
        let index: BTreeMap<&str, usize> = self.steps.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
        let mut finish = vec![0usize; self.steps.len()];
        for (i, s) in self.steps.iter().enumerate() {
            let start = s.after.iter().filter_map(|d| index.get(d.as_str())).map(|&j| finish[j]).max().unwrap_or(0);
            finish[i] = start + round_trips(s.kind, s.action);
        }
        finish.into_iter().max().unwrap_or(0)
    }
    pub fn count(&self, action: Action) -> usize {
        self.steps.iter().filter(|s| s.action == action).count()
    }
}

/// The fewest sequential API calls a change of this kind needs on AWS (calls
/// that can go together count once): a role is CreateRole then PutRolePolicy; a
/// bucket CreateBucket then its settings; a function CreateFunction then the
/// poll that sees it Active; an API CreateRestApi then GetResources for the
/// root; a method PutMethod, then PutIntegration with the method responses, then
/// the integration responses; a deployment CreateDeployment then the tagged
/// stage; a bucket delete lists before DeleteBucket.
pub fn round_trips(kind: Kind, action: Action) -> usize {
    match action {
        Action::NoOp => 0,
        Action::Create | Action::Replace => match kind {
            Kind::Role | Kind::Bucket | Kind::Function | Kind::RestApi | Kind::Deployment | Kind::LogGroup => 2,
            Kind::Method | Kind::Schedule => 3,
            Kind::ApiResource | Kind::Permission | Kind::GatewayResponses | Kind::CloudformationStack => 1,
        },
        Action::Update => match kind {
            Kind::Function | Kind::Schedule => 2,
            Kind::Method => 3,
            Kind::Role | Kind::Bucket | Kind::RestApi | Kind::Deployment | Kind::ApiResource | Kind::Permission | Kind::GatewayResponses | Kind::LogGroup | Kind::CloudformationStack => 1,
        },
        Action::Delete => match kind {
            Kind::Role | Kind::Bucket | Kind::Schedule => 2,
            Kind::Function | Kind::RestApi | Kind::Deployment | Kind::Method | Kind::ApiResource | Kind::Permission | Kind::GatewayResponses | Kind::LogGroup | Kind::CloudformationStack => 1,
        },
    }
}

/// The physical name a node must have, when its kind has a stable name; a
/// recorded resource under another name is replaced rather than updated.
fn physical_name(spec: &Spec) -> Option<&str> {
    match spec {
        Spec::Role { name, .. } | Spec::Bucket { name, .. } | Spec::Function { name, .. } | Spec::LogGroup { name, .. } => Some(name),
        _ => None,
    }
}

/// The output naming why a record is an orphan (see `Target::orphans`): the
/// reason its delete step gives.
pub const ORPHAN: &str = "orphan";

/// Plan a deploy. `recorded` is `None` for a stage never deployed; `live` holds
/// what observation found for recorded resources (absent = not observed = trusted).
pub fn plan(desired: &Desired, recorded: Option<&State>, live: &BTreeMap<String, Live>) -> Plan {
    let empty = BTreeMap::new();
    let resources = recorded.map(|s| &s.resources).unwrap_or(&empty);
    let mut steps: Vec<Step> = Vec::new();
    let mut replaced: BTreeSet<&str> = BTreeSet::new();

    for node in &desired.nodes {
        let recorded = resources.get(&node.id);
        let (action, reason) = decide(node, recorded, live.get(&node.id), &replaced);
        // Replaced, or recreated after a deletion by hand: what lived inside it is gone too.
        if action == Action::Replace || (action == Action::Create && resources.contains_key(&node.id)) {
            replaced.insert(&node.id);
        }
        steps.push(Step {
            id: node.id.clone(),
            kind: node.spec.kind(),
            action,
            scope: scope(node, recorded, action, live.get(&node.id)),
            reason,
            after: node.depends_on.clone(),
            level: 0,
        });
    }

    // Deletes: recorded but no longer desired, dependents before what they depend on.
    let mut gone: Vec<&String> = resources.keys().filter(|id| desired.get(id).is_none()).collect();
    gone.sort();
    let order = reverse_topological(&gone, resources);
    for id in order {
        let r = &resources[id];
        // A deleted resource waits for the deletion of everything recorded as depending on it.
        let dependents: Vec<String> =
            gone.iter().filter(|other| resources[**other].depends_on.iter().any(|d| d == id)).map(|s| (*s).clone()).collect();
        steps.push(Step {
            id: id.clone(),
            kind: r.kind,
            action: Action::Delete,
            scope: None,
            reason: r.outputs.get(ORPHAN).cloned().unwrap_or_else(|| "no longer in the stack".into()),
            after: dependents,
            level: 0,
        });
    }
    // A new deployment snapshots the API: it runs after every other API change,
    // deletions of methods and resources included.
    if let Some(i) = steps.iter().position(|s| s.kind == Kind::Deployment && matches!(s.action, Action::Create | Action::Update | Action::Replace)) {
        let mut deployment = steps.remove(i);
        for s in &steps {
            if s.action == Action::Delete && matches!(s.kind, Kind::Method | Kind::ApiResource) {
                deployment.after.push(s.id.clone());
            }
        }
        steps.push(deployment);
    }
    assign_levels(&mut steps);
    Plan { steps }
}

/// What a function update changes: the code when its hash differs from the
/// recorded one, the configuration when its digest does; everything when it
/// was changed by hand (or the record predates the digests).
fn scope(node: &Node, recorded: Option<&super::state::Recorded>, action: Action, live: Option<&Live>) -> Option<Scope> {
    let Spec::Function { code_sha256, .. } = &node.spec else { return None };
    if action != Action::Update {
        return None;
    }
    let Some(r) = recorded.filter(|_| !matches!(live, Some(Live::Drifted(_) | Live::Outdated(_)))) else {
        return Some(Scope { code: true, configuration: true });
    };
    let configuration = node.spec.function_config_digest();
    Some(Scope {
        code: r.outputs.get("code_sha256") != Some(code_sha256),
        configuration: configuration.is_none() || r.outputs.get("config_hash") != configuration.as_ref(),
    })
}

fn decide(node: &Node, recorded: Option<&super::state::Recorded>, live: Option<&Live>, replaced: &BTreeSet<&str>) -> (Action, String) {
    let Some(r) = recorded else {
        return (Action::Create, "new".into());
    };
    if let Some(name) = physical_name(&node.spec)
        && r.physical_id != name
    {
        return (Action::Replace, format!("physical name changes from `{}` to `{name}`", r.physical_id));
    }
    match live {
        Some(Live::Missing) => return (Action::Create, "deleted outside stackctl: recreating".into()),
        Some(Live::Drifted(why)) => return (Action::Update, format!("changed outside stackctl ({why})")),
        Some(Live::Outdated(why)) => return (Action::Update, why.clone()),
        _ => {}
    }
    if r.hash != node.hash {
        let reason = match &node.spec {
            Spec::Deployment { .. } => "the API changed: new deployment for the stage".to_string(),
            Spec::Function { .. } => "code or configuration changed".to_string(),
            _ => "configuration changed".to_string(),
        };
        return (Action::Update, reason);
    }
    // A permission lives in its function's resource policy: replacing the
    // function drops it, so it is recreated with it.
    if let Spec::Permission { function, .. } = &node.spec
        && replaced.contains(function.as_str())
        && !matches!(live, Some(Live::Present))
    {
        return (Action::Create, format!("`{function}` is replaced: its permissions go with it"));
    }
    (Action::NoOp, "unchanged".into())
}

fn reverse_topological<'a>(ids: &[&'a String], resources: &BTreeMap<String, super::state::Recorded>) -> Vec<&'a String> {
    // Kahn's algorithm over "x depends on y" restricted to `ids`, emitting dependents first.
    let set: BTreeSet<&str> = ids.iter().map(|s| s.as_str()).collect();
    let mut remaining: Vec<&'a String> = ids.to_vec();
    let mut out = Vec::new();
    while !remaining.is_empty() {
        let before = remaining.len();
        let mut next = Vec::new();
        for id in &remaining {
            let has_dependent = remaining.iter().any(|other| {
                other != id && resources[other.as_str()].depends_on.iter().any(|d| d == id.as_str() && set.contains(d.as_str()))
            });
            if has_dependent {
                next.push(*id);
            } else {
                out.push(*id);
            }
        }
        remaining = next;
        if remaining.len() == before {
            // A cycle cannot come from our graphs; emit the rest rather than loop.
            out.append(&mut remaining);
        }
    }
    out
}

fn assign_levels(steps: &mut [Step]) {
    let index: BTreeMap<String, usize> = steps.iter().enumerate().map(|(i, s)| (s.id.clone(), i)).collect();
    let mut level = vec![0usize; steps.len()];
    // Steps are in an order where every step comes after what it waits for, so
    // one pass suffices; a no-op costs nothing and adds no level.
    for i in 0..steps.len() {
        let base = steps[i].after.iter().filter_map(|d| index.get(d)).map(|&j| level[j]).max().unwrap_or(0);
        level[i] = if steps[i].action == Action::NoOp { base } else { base + 1 };
    }
    for (s, l) in steps.iter_mut().zip(level) {
        s.level = l;
    }
}

/// The plan as text, one line per change.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    for s in plan.changes() {
        let sign = match s.action {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::NoOp => " ",
        };
        out.push_str(&format!("{sign:>3} {:<40} {}\n", s.id, s.reason));
    }
    let unchanged = plan.count(Action::NoOp);
    out.push_str(&format!(
        "plan: {} to create, {} to update, {} to replace, {} to delete, {unchanged} unchanged\n",
        plan.count(Action::Create),
        plan.count(Action::Update),
        plan.count(Action::Replace),
        plan.count(Action::Delete)
    ));
    out
}
