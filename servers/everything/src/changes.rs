//! Tools that announce list changes: `test_trigger_tool_change` and `test_trigger_prompt_change`
//! call [`Server::notify`], which tells every session and every `subscriptions/listen` stream
//! that asked for that kind of change.
//!
//! A handler needs the [`Server`] it belongs to, which exists only after the builder has taken
//! the handler: the tools share a [`ServerCell`] that [`crate::server`] fills once it has built
//! the server. The cell keeps the server alive from inside its own registry, so a server built
//! here is never freed (one per process is the intended use; the framework gives a handler no
//! weaker handle on its server).

use std::sync::{Arc, OnceLock};

use portico_core::server::{Change, Server, ServerBuilder, tool};

use crate::NoArguments;

/// The server, once built.
#[derive(Clone, Default)]
pub(crate) struct ServerCell(Arc<OnceLock<Server>>);

impl ServerCell {
    /// Fills the cell (the first call wins).
    pub(crate) fn set(&self, server: Server) {
        let _ = self.0.set(server);
    }

    /// Announces `change`; `false` if the server is not built yet.
    fn notify(&self, change: Change) -> bool {
        match self.0.get() {
            Some(server) => {
                server.notify(change);
                true
            }
            None => false,
        }
    }
}

/// Registers the change tools, which announce through `cell`.
pub(crate) fn register(builder: ServerBuilder, cell: &ServerCell) -> ServerBuilder {
    let tools = cell.clone();
    let prompts = cell.clone();
    builder
        .tool(tool(
            "test_trigger_tool_change",
            "Announces that the tool list changed (notifications/tools/list_changed)",
            move |_cx, _args: NoArguments| {
                let cell = tools.clone();
                async move {
                    if cell.notify(Change::ToolsListChanged) {
                        Ok("Announced notifications/tools/list_changed")
                    } else {
                        Err("the server is not running yet")
                    }
                }
            },
        ))
        .tool(tool(
            "test_trigger_prompt_change",
            "Announces that the prompt list changed (notifications/prompts/list_changed)",
            move |_cx, _args: NoArguments| {
                let cell = prompts.clone();
                async move {
                    if cell.notify(Change::PromptsListChanged) {
                        Ok("Announced notifications/prompts/list_changed")
                    } else {
                        Err("the server is not running yet")
                    }
                }
            },
        ))
}
