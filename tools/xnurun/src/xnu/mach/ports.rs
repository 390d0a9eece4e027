//! The task's port names (its IPC space, `ipc_space`, osfmk/ipc): which
//! name stands for which right to which object. A name is an entry's index
//! and a generation byte (`MACH_PORT_MAKE`, osfmk/mach/port.h). XNU draws
//! free entries in a random order (`ipc_space_rand_freelist`), so a real
//! task's names differ from run to run; xnurun hands them out in order,
//! 0x103, 0x203, ..., so that a run can be compared with its trace.
//!
//! The rules the example and the tests rely on are XNU's: asking twice
//! for the thread, task or host port gives the same name (a send right
//! copied out again lands on the entry the task already holds for that
//! port, with one more user reference: `ipc_right_copyout`), and each
//! `mach_reply_port` is a new receive right under a new name.

use std::collections::VecDeque;

/// What a name can stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// The task's own thread (`thread_self_trap`): a kernel object.
    Thread,
    Task,
    Host,
    /// A port the task holds the receive right of (`mach_reply_port`).
    Port(u32),
}

impl Object {
    pub fn name(self) -> &'static str {
        match self {
            Object::Thread => "thread port",
            Object::Task => "task port",
            Object::Host => "host port",
            Object::Port(_) => "port",
        }
    }
}

/// A message waiting in a port's queue: its header fields as the
/// receiver will see them, and the bytes after the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub bits: u32,
    /// The right that came with the message (its `msgh_local_port`), the
    /// receiver's `msgh_remote_port`: a name in this space, or 0.
    pub reply: u32,
    pub id: i32,
    pub body: Vec<u8>,
}

struct Entry {
    name: u32,
    object: Object,
    /// User references of the send right (kernel objects) or 0 for a
    /// receive right.
    send_refs: u32,
}

#[derive(Default)]
pub struct Space {
    entries: Vec<Entry>,
    next_index: u32,
    queues: Vec<(u32, VecDeque<Queued>)>,
}

/// The generation byte of a name fresh from the table.
const GENERATION: u32 = 0x03;

impl Space {
    fn new_name(&mut self) -> u32 {
        self.next_index += 1;
        (self.next_index << 8) | GENERATION
    }

    /// A send right to a kernel object, copied out: the name the task
    /// already has for it, with one more reference, or a new one.
    pub fn send_right(&mut self, object: Object) -> u32 {
        if let Some(e) = self.entries.iter_mut().find(|e| e.object == object) {
            e.send_refs += 1;
            return e.name;
        }
        let name = self.new_name();
        self.entries.push(Entry { name, object, send_refs: 1 });
        name
    }

    /// `mach_reply_port`: a new port, its receive right under a new name.
    pub fn new_port(&mut self) -> u32 {
        let name = self.new_name();
        self.entries.push(Entry { name, object: Object::Port(name), send_refs: 0 });
        self.queues.push((name, VecDeque::new()));
        name
    }

    pub fn lookup(&self, name: u32) -> Option<Object> {
        self.entries.iter().find(|e| e.name == name).map(|e| e.object)
    }

    /// Whether `name` holds a send right (kernel objects: while it has
    /// references).
    pub fn has_send(&self, name: u32) -> bool {
        self.entries.iter().any(|e| e.name == name && e.send_refs > 0)
    }

    /// `mach_port_deallocate` (osfmk/ipc/ipc_right.c `ipc_right_dealloc`):
    /// one user reference of a send right fewer; the name goes with the
    /// last. KERN_INVALID_NAME where there is no such name,
    /// KERN_INVALID_RIGHT where it holds no send right.
    pub fn deallocate(&mut self, name: u32) -> Result<(), u32> {
        let Some(i) = self.entries.iter().position(|e| e.name == name) else { return Err(super::KERN_INVALID_NAME) };
        if self.entries[i].send_refs == 0 {
            return Err(super::KERN_INVALID_RIGHT);
        }
        self.entries[i].send_refs -= 1;
        if self.entries[i].send_refs == 0 {
            self.entries.remove(i);
        }
        Ok(())
    }

    /// The queue of the port whose receive right `name` is.
    pub fn queue(&mut self, name: u32) -> Option<&mut VecDeque<Queued>> {
        self.queues.iter_mut().find(|(n, _)| *n == name).map(|(_, q)| q)
    }

    /// Destroys the receive right `name` (the port dies with its queue).
    pub fn destroy_port(&mut self, name: u32) {
        self.entries.retain(|e| e.name != name);
        self.queues.retain(|(n, _)| *n != name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_objects_keep_their_name_and_reply_ports_are_new() {
        let mut s = Space::default();
        let thread = s.send_right(Object::Thread);
        assert_eq!(thread, 0x103);
        assert_eq!(s.send_right(Object::Thread), thread, "asked twice: the same name");
        let reply = s.new_port();
        let other = s.new_port();
        assert_ne!(reply, other);
        assert_eq!(s.lookup(reply), Some(Object::Port(reply)));
        assert!(!s.has_send(reply), "a receive right only");
        assert_eq!(s.deallocate(reply), Err(super::super::KERN_INVALID_RIGHT));
        assert_eq!(s.deallocate(0x9903), Err(super::super::KERN_INVALID_NAME));
        assert_eq!(s.deallocate(thread), Ok(()));
        assert_eq!(s.lookup(thread), Some(Object::Thread), "one reference left");
        assert_eq!(s.deallocate(thread), Ok(()));
        assert_eq!(s.lookup(thread), None, "the last reference takes the name");
    }
}
