//! Symbol resolution: every loaded object's external definitions in one
//! table, and archive members loaded for as long as they define something
//! still undefined (the entry symbol included), as ld64 does. What no input
//! defines but the linker must, common symbols and `__mh_execute_header`,
//! comes from [`crate::synthetic`] as objects of its own.

use std::collections::{BTreeSet, HashMap};

use crate::arch::Arch;
use crate::error::{Error, Result};
use crate::input::{self, Inputs};
use crate::model::{Def, Object};
use crate::synthetic;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SymRef {
    pub obj: usize,
    pub sym: usize,
}

pub struct Resolution<'a> {
    pub arch: Arch,
    /// Command-line objects first, then archive members in load order.
    pub objects: Vec<Object<'a>>,
    globals: HashMap<&'a [u8], SymRef>,
}

pub fn resolve<'a>(inputs: Inputs<'a>, entry: &str) -> Result<Resolution<'a>> {
    let Inputs { arch, objects, archives } = inputs;
    let mut res = Resolution { arch, objects: Vec::new(), globals: HashMap::new() };
    for object in objects {
        res.add(object)?;
    }
    // ld64 defines these in its own internal file, before any archive is
    // searched; an input that defines one itself keeps its own.
    let defined = |name: &[u8]| res.globals.contains_key(name);
    if let Some(linker) = synthetic::linker_symbols(arch, defined) {
        res.add(linker)?;
    }
    // Every member parsed once, and the first member (in command-line
    // order) defining each name: asking each member about each wanted name
    // on every round was quadratic in the archive's size.
    let mut members: Vec<Vec<Option<Object<'a>>>> = Vec::new();
    let mut index: HashMap<&'a [u8], (usize, usize)> = HashMap::new();
    let mut indexed = false;
    loop {
        let wanted = res.undefined(entry);
        if wanted.is_empty() {
            break;
        }
        if !indexed {
            indexed = true;
            for (a, archive) in archives.iter().enumerate() {
                let mut parsed = Vec::with_capacity(archive.members.len());
                for (m, member) in archive.members.iter().enumerate() {
                    let object = input::parse_object(&member.name, member.data, arch)?;
                    for symbol in &object.symbols {
                        if symbol.external && is_definition(symbol.def) {
                            index.entry(symbol.name).or_insert((a, m));
                        }
                    }
                    parsed.push(Some(object));
                }
                members.push(parsed);
            }
        }
        // The first wanted name, in sorted order, that an unloaded member
        // defines: the same members load in the same order on every run.
        let next = wanted.iter().find_map(|name| index.get(name.as_slice()).copied().filter(|&(a, m)| members[a][m].is_some()));
        let Some(object) = next.and_then(|(a, m)| members[a][m].take()) else {
            break;
        };
        res.add(object)?;
    }
    let commons = synthetic::commons(&res.objects, |name| res.globals.contains_key(name));
    if let Some(commons) = commons {
        res.add(commons)?;
    }
    Ok(res)
}

fn is_definition(def: Def) -> bool {
    matches!(def, Def::Section { .. } | Def::Absolute(_))
}


impl<'a> Resolution<'a> {
    fn add(&mut self, object: Object<'a>) -> Result<()> {
        let obj = self.objects.len();
        for (sym, symbol) in object.symbols.iter().enumerate() {
            if !symbol.external || !is_definition(symbol.def) {
                continue;
            }
            let new = SymRef { obj, sym };
            match self.globals.get(symbol.name).copied() {
                None => {
                    self.globals.insert(symbol.name, new);
                }
                Some(old) => {
                    // `old` may be in this very object, which is not in
                    // `objects` yet.
                    let old_object = self.objects.get(old.obj).unwrap_or(&object);
                    let old_symbol = &old_object.symbols[old.sym];
                    match (old_symbol.weak, symbol.weak) {
                        // A weak definition yields to a strong one, and the
                        // first of several weak ones wins.
                        (true, false) => {
                            self.globals.insert(symbol.name, new);
                        }
                        (_, true) => {}
                        (false, false) => {
                            let elsewhere = self.objects.get(old.obj).map(|o| o.name.as_str());
                            let what = match elsewhere {
                                Some(other) => format!("duplicate symbol {} (also defined in {other})", symbol.display()),
                                None => format!("duplicate symbol {} (defined twice in this file)", symbol.display()),
                            };
                            return Err(Error::new(&object.name, what));
                        }
                    }
                }
            }
        }
        self.objects.push(object);
        Ok(())
    }

    /// Names referenced but not defined, the entry symbol included, sorted
    /// so that archive members load in the same order on every run.
    fn undefined(&self, entry: &str) -> BTreeSet<Vec<u8>> {
        let mut out = BTreeSet::new();
        for object in &self.objects {
            for s in &object.symbols {
                if s.external && matches!(s.def, Def::Undefined) && !self.globals.contains_key(s.name) {
                    out.insert(s.name.to_vec());
                }
            }
        }
        if !self.globals.contains_key(entry.as_bytes()) {
            out.insert(entry.as_bytes().to_vec());
        }
        out
    }

    /// The definition a reference to `objects[obj].symbols[sym]` binds to:
    /// the symbol itself when local, the winning definition when external.
    pub fn definition(&self, obj: usize, sym: usize) -> Option<SymRef> {
        let symbol = self.objects.get(obj)?.symbols.get(sym)?;
        if symbol.external {
            self.globals.get(symbol.name).copied()
        } else if is_definition(symbol.def) {
            Some(SymRef { obj, sym })
        } else {
            None
        }
    }

    pub fn global(&self, name: &[u8]) -> Option<SymRef> {
        self.globals.get(name).copied()
    }
}
