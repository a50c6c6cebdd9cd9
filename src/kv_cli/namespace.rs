//! `couchkv kv namespace create|list`.

use serde_json::{json, Value};

use super::{kv_err, Target};
use crate::cli::NamespaceCommand;
use crate::server::ServerError;

pub(super) async fn run(target: &Target, command: NamespaceCommand) -> Result<(), ServerError> {
    match command {
        NamespaceCommand::Create { title } => {
            let made = match &target.remote {
                // On a server, the server picks the id, as it does for wrangler.
                Some(remote) => remote.create_service_namespace(&title).await?,
                None => target.kv.create_namespace(&title).await.map_err(kv_err)?,
            };
            println!("{}", made.id);
        }
        NamespaceCommand::List => {
            let list: Vec<Value> = target
                .kv
                .list_namespaces()
                .await
                .map_err(kv_err)?
                .into_iter()
                .filter(|n| !n.id.starts_with('_'))
                .map(|n| json!({"id": n.id, "title": n.title}))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&list).unwrap_or_default()
            );
        }
    }
    Ok(())
}
