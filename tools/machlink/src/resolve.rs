//! Symbol resolution: every loaded object's external definitions in one
//! table, and archive members loaded for as long as they define something
//! still undefined (the entry symbol included), as ld64 does. What no input
//! defines but the linker must, common symbols and `__mh_execute_header`,
//! comes from [`crate::synthetic`] as objects of its own.

use std::collections::BTreeSet;

use object::macho;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::arch::Arch;
use crate::error::{Error, Result};
use crate::input::{self, Archive, Inputs};
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
    /// Every external name, numbered once, in the order first seen.
    names: FxHashMap<&'a [u8], u32>,
    /// `globals[id]`: the winning definition of name `id`, if any.
    globals: Vec<Option<SymRef>>,
    /// `ids[obj][sym]`: the number of an external symbol's name
    /// ([`NOT_EXTERNAL`] for the others), so that each name is hashed once
    /// per symbol in the whole link.
    ids: Vec<Vec<u32>>,
    /// `bind[obj][sym]`: the definition a reference to that symbol binds
    /// to, looked up by name once per symbol, so that no later stage hashes
    /// a name per relocation.
    bind: Vec<Vec<Option<SymRef>>>,
    /// Names referenced but not yet looked for in the archives; the
    /// smallest first, so that members load in the same order every run.
    pending: BTreeSet<&'a [u8]>,
    /// Common symbols not yet looked for in the archives, likewise.
    tentative: BTreeSet<&'a [u8]>,
}

/// The archives' members, parsed on first need (in parallel), with the
/// first member in command-line order that defines each name.
struct Library<'a> {
    members: Vec<Vec<Option<Object<'a>>>>,
    index: FxHashMap<&'a [u8], (usize, usize)>,
    /// Names only a member that cannot be linked defines, with why not.
    unusable: FxHashMap<&'a [u8], Error>,
}

impl<'a> Library<'a> {
    fn new(archives: &[Archive<'a>], arch: Arch) -> Result<Library<'a>> {
        let mut members = Vec::new();
        let mut index = FxHashMap::default();
        let mut unusable = FxHashMap::default();
        for (a, archive) in archives.iter().enumerate() {
            let parsed = archive
                .members
                .par_iter()
                .map(|m| match &m.unusable {
                    None => input::parse_object(&m.name, m.data, arch).map(Some),
                    Some(_) => Ok(None),
                })
                .collect();
            let parsed: Vec<Option<Object<'a>>> = input::first_error(parsed)?;
            for (m, (member, object)) in archive.members.iter().zip(&parsed).enumerate() {
                match (object, &member.unusable) {
                    (Some(object), _) => {
                        for symbol in &object.symbols {
                            if symbol.external && is_definition(symbol.def) {
                                index.entry(symbol.name).or_insert((a, m));
                            }
                        }
                    }
                    (None, Some(why)) => {
                        for name in input::defined_names(member.data) {
                            unusable.entry(name).or_insert_with(|| why.clone());
                        }
                    }
                    (None, None) => {}
                }
            }
            members.push(parsed);
        }
        Ok(Library { members, index, unusable })
    }

    /// The library, made on first use: a link whose objects define
    /// everything never parses an archive member.
    fn get<'l>(slot: &'l mut Option<Library<'a>>, archives: &[Archive<'a>], arch: Arch) -> Result<&'l mut Library<'a>> {
        match slot {
            Some(lib) => Ok(lib),
            None => Ok(slot.insert(Library::new(archives, arch)?)),
        }
    }

    /// The unloaded member that defines `name`, taken out of the library.
    fn take(&mut self, name: &[u8], data_only: bool) -> Option<Object<'a>> {
        let &(a, m) = self.index.get(name)?;
        let object = self.members[a][m].as_ref()?;
        if data_only && !defines_data(object, name) {
            return None;
        }
        self.members[a][m].take()
    }
}

/// Whether `object` defines `name` outside code: the only kind of archive
/// definition ld64 loads to replace a common symbol
/// (`Resolver::resolveAllUndefines`, src/ld/Resolver.cpp, searching with
/// `dataSymbolOnly`).
fn defines_data(object: &Object<'_>, name: &[u8]) -> bool {
    let code = macho::S_ATTR_PURE_INSTRUCTIONS.0 | macho::S_ATTR_SOME_INSTRUCTIONS.0;
    object.symbols.iter().any(|s| {
        s.external
            && s.name == name
            && matches!(s.def, Def::Section { section, .. } if object.sections[section].flags.0 & code == 0)
    })
}

pub fn resolve<'a>(inputs: Inputs<'a>, entry: &'a str) -> Result<Resolution<'a>> {
    let Inputs { arch, objects, archives } = inputs;
    let mut res = Resolution {
        arch,
        objects: Vec::new(),
        names: FxHashMap::default(),
        globals: Vec::new(),
        ids: Vec::new(),
        bind: Vec::new(),
        pending: BTreeSet::new(),
        tentative: BTreeSet::new(),
    };
    for object in objects {
        res.add(object)?;
    }
    // ld64 defines these in its own internal file, before any archive is
    // searched; an input that defines one itself keeps its own.
    let defined = |name: &[u8]| res.global(name).is_some();
    if let Some(linker) = synthetic::linker_symbols(arch, defined) {
        res.add(linker)?;
    }
    res.pending.insert(entry.as_bytes());
    let mut library: Option<Library<'a>> = None;
    loop {
        // Each referenced name is looked up once: a member loads for the
        // first undefined name it defines, and its own references join the
        // queue. (Rescanning every object for undefined names after each
        // member made archive links quadratic.)
        while let Some(name) = res.pending.pop_first() {
            if res.global(name).is_some() {
                continue;
            }
            let lib = Library::get(&mut library, &archives, arch)?;
            if let Some(object) = lib.take(name, false) {
                res.add(object)?;
            } else if let Some(why) = lib.unusable.get(name) {
                let name = String::from_utf8_lossy(name);
                return Err(Error::new(why.file().unwrap_or_default(), format!("{}, and the link needs its symbol {name}", why.what())));
            }
        }
        // Then, as ld64 does once no undefined name is left, a common
        // symbol is replaced by an archive member's data definition of it;
        // that member's own references are resolved before the next.
        if archives.is_empty() {
            break;
        }
        let mut loaded = None;
        while let Some(name) = res.tentative.pop_first() {
            if res.global(name).is_some() {
                continue;
            }
            let lib = Library::get(&mut library, &archives, arch)?;
            if let Some(object) = lib.take(name, true) {
                loaded = Some(object);
                break;
            }
        }
        match loaded {
            Some(object) => res.add(object)?,
            None => break,
        }
    }
    let commons = synthetic::commons(&res.objects, |name| res.global(name).is_some());
    if let Some(commons) = commons {
        res.add(commons)?;
    }
    res.bind = res
        .objects
        .par_iter()
        .enumerate()
        .map(|(obj, object)| {
            object
                .symbols
                .iter()
                .enumerate()
                .map(|(sym, symbol)| {
                    if symbol.external {
                        res.globals[res.ids[obj][sym] as usize]
                    } else if is_definition(symbol.def) {
                        Some(SymRef { obj, sym })
                    } else {
                        None
                    }
                })
                .collect()
        })
        .collect();
    Ok(res)
}

/// The name number of a symbol that is not external.
const NOT_EXTERNAL: u32 = u32::MAX;

fn is_definition(def: Def) -> bool {
    matches!(def, Def::Section { .. } | Def::Absolute(_))
}

impl<'a> Resolution<'a> {
    fn add(&mut self, object: Object<'a>) -> Result<()> {
        let obj = self.objects.len();
        let mut ids = vec![NOT_EXTERNAL; object.symbols.len()];
        for (sym, symbol) in object.symbols.iter().enumerate() {
            if !symbol.external {
                continue;
            }
            let next = self.globals.len() as u32;
            let id = *self.names.entry(symbol.name).or_insert(next);
            if id == next {
                self.globals.push(None);
            }
            ids[sym] = id;
            if !is_definition(symbol.def) {
                continue;
            }
            let new = SymRef { obj, sym };
            let slot = &mut self.globals[id as usize];
            match *slot {
                None => *slot = Some(new),
                Some(old) => {
                    // `old` may be in this very object, which is not in
                    // `objects` yet.
                    let old_object = self.objects.get(old.obj).unwrap_or(&object);
                    let old_symbol = &old_object.symbols[old.sym];
                    match (old_symbol.weak, symbol.weak) {
                        // A weak definition yields to a strong one, and the
                        // first of several weak ones wins.
                        (true, false) => *slot = Some(new),
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
        for (symbol, &id) in object.symbols.iter().zip(&ids) {
            if id != NOT_EXTERNAL && self.globals[id as usize].is_none() {
                match symbol.def {
                    Def::Undefined => _ = self.pending.insert(symbol.name),
                    Def::Common { .. } => _ = self.tentative.insert(symbol.name),
                    _ => {}
                }
            }
        }
        self.objects.push(object);
        self.ids.push(ids);
        Ok(())
    }

    /// The definition a reference to `objects[obj].symbols[sym]` binds to:
    /// the symbol itself when local, the winning definition when external.
    pub fn definition(&self, obj: usize, sym: usize) -> Option<SymRef> {
        *self.bind.get(obj)?.get(sym)?
    }

    pub fn global(&self, name: &[u8]) -> Option<SymRef> {
        self.globals[*self.names.get(name)? as usize]
    }
}
