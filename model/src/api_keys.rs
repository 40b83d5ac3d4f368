//! Personal API keys (for the OpenAI-compatible API), as people see them.

use serde::{Deserialize, Serialize};

pub const NAME_MAX: usize = 100;
/// Keys one person may hold at once.
pub const KEYS_MAX: u64 = 50;
/// What every key starts with.
pub const KEY_PREFIX: &str = "agk_";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A key just created: the only time the whole key is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewApiKey {
    pub key: String,
    pub view: ApiKeyView,
}
