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
    globals: FxHashMap<&'a [u8], SymRef>,
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
    let mut res =
        Resolution { arch, objects: Vec::new(), globals: FxHashMap::default(), bind: Vec::new(), pending: BTreeSet::new(), tentative: BTreeSet::new() };
    for object in objects {
        res.add(object)?;
    }
    // ld64 defines these in its own internal file, before any archive is
    // searched; an input that defines one itself keeps its own.
    let defined = |name: &[u8]| res.globals.contains_key(name);
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
            if res.globals.contains_key(name) {
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
            if res.globals.contains_key(name) {
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
    let commons = synthetic::commons(&res.objects, |name| res.globals.contains_key(name));
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
                        res.globals.get(symbol.name).copied()
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
        for symbol in &object.symbols {
            if symbol.external && !self.globals.contains_key(symbol.name) {
                match symbol.def {
                    Def::Undefined => _ = self.pending.insert(symbol.name),
                    Def::Common { .. } => _ = self.tentative.insert(symbol.name),
                    _ => {}
                }
            }
        }
        self.objects.push(object);
        Ok(())
    }

    /// The definition a reference to `objects[obj].symbols[sym]` binds to:
    /// the symbol itself when local, the winning definition when external.
    pub fn definition(&self, obj: usize, sym: usize) -> Option<SymRef> {
        *self.bind.get(obj)?.get(sym)?
    }

    pub fn global(&self, name: &[u8]) -> Option<SymRef> {
        self.globals.get(name).copied()
    }
}
