//! Who is asking, and on which listener: the connection's [`Session`] (listener, peer,
//! authenticated [`Principal`]), the named listeners and their security protocols.
//!
//! This sits below the handlers and the dispatcher: the connection owns a session, the
//! dispatcher hands it to the handlers, and what they decide with it (ACL checks, quotas)
//! reads the replicated security state of the metadata view.

pub mod authorizer;
pub mod listener;
pub mod sasl;
pub mod scram;
pub mod session;
pub mod tls;

pub use listener::{ListenerSpec, SecurityProtocol};
pub use session::{Principal, Session};
