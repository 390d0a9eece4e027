//! What the reader makes of an object file, and what every later stage
//! reads: sections, symbols and decoded relocations. Plain data with no
//! behaviour beyond naming, so that the reader ([`crate::input`],
//! [`crate::fixup`]) and everything after it depend on this module and
//! never on each other.

use object::macho;

pub struct Object<'a> {
    /// `path`, or `path(member)` for an archive member: the name errors use.
    pub name: String,
    /// In load-command order: section ordinal `n` is `sections[n - 1]`.
    pub sections: Vec<Section<'a>>,
    /// In symbol-table order, so relocation symbol numbers index it.
    pub symbols: Vec<Symbol<'a>>,
    /// `MH_SUBSECTIONS_VIA_SYMBOLS`: the compiler promises that every symbol
    /// starts a block that can be moved or dropped on its own.
    pub subsections_via_symbols: bool,
}

pub struct Section<'a> {
    pub segname: String,
    pub sectname: String,
    /// The section's address in the object's own address space, in which
    /// symbol values and non-extern relocation targets are expressed.
    pub addr: u64,
    pub size: u64,
    /// log2 of the alignment.
    pub align: u32,
    pub flags: macho::SectionFlags,
    /// Exactly `size` bytes, or empty for a zero-fill section.
    pub data: &'a [u8],
    /// Sorted by offset, so the fixups of one atom are found by binary
    /// search (a linear scan per atom made links quadratic).
    pub fixups: Vec<Fixup>,
    /// Never part of the image: see `input::is_dropped`.
    pub dropped: bool,
}

impl Section<'_> {
    pub fn full_name(&self) -> String {
        format!("{},{}", self.segname, self.sectname)
    }

    pub fn end(&self) -> u64 {
        self.addr + self.size
    }

    pub fn is_zerofill(&self) -> bool {
        is_zerofill(self.flags.typ())
    }
}

pub fn is_zerofill(typ: macho::SectionType) -> bool {
    matches!(typ, macho::S_ZEROFILL | macho::S_GB_ZEROFILL | macho::S_THREAD_LOCAL_ZEROFILL)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Def {
    Undefined,
    /// A tentative definition (`N_UNDF | N_EXT` with a size): the linker
    /// allocates it zero-filled unless a real definition exists.
    Common { size: u64, align: u32 },
    Absolute(u64),
    /// Defined at object address `value` in `sections[section]`.
    Section { section: usize, value: u64 },
    /// Debugging entries, and `N_INDR`/`N_PBUD`: never resolved against.
    Other,
}

pub struct Symbol<'a> {
    pub name: &'a [u8],
    pub def: Def,
    pub external: bool,
    /// `N_PEXT`: global within this link, local in the image.
    pub private_extern: bool,
    pub weak: bool,
    pub no_dead_strip: bool,
    /// `N_ALT_ENTRY`: a second name inside the block of the symbol before
    /// it, not the start of a block of its own.
    pub alt_entry: bool,
}

impl Symbol<'_> {
    pub fn display(&self) -> String {
        String::from_utf8_lossy(self.name).into_owned()
    }
}

#[derive(Clone, Debug)]
pub struct Fixup {
    /// Offset of the field in its section.
    pub offset: u64,
    /// Width of the field in bytes: 1, 2, 4 or 8.
    pub size: u8,
    pub action: Action,
}

#[derive(Clone, Debug)]
pub enum Action {
    /// Store `target - minus`, less `P + bias` when pc-relative (`P` being
    /// the field's final address).
    Apply { target: Target, minus: Option<Target>, pc_bias: Option<u64>, via: Via },
    /// Refused if the code holding it is linked in, with this message:
    /// unreachable archive code may use anything.
    Unsupported(String),
}

/// How the field reaches its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Direct,
    /// Through an 8-byte GOT slot holding the target's address
    /// (`X86_64_RELOC_GOT`, or a `GOT_LOAD` that cannot be relaxed).
    Got,
    /// `X86_64_RELOC_GOT_LOAD` on `movq sym@GOTPCREL(%rip), %reg`: with the
    /// target in the image, the load becomes `leaq sym(%rip), %reg` and no
    /// slot is needed, as ld64 does (`kindStoreTargetAddressX86PCRel32GOTLoadNowLEA`,
    /// src/ld/OutputFile.cpp).
    GotLoadAsLea,
}

#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// `symbols[index] + addend`, the symbol resolved across objects.
    Symbol { index: usize, addend: i64 },
    /// The final address of object address `anchor` in `sections[section]`,
    /// plus `addend`. `anchor` picks the block the target moves with.
    Local { section: usize, anchor: u64, addend: i64 },
}
