package wasmbin

import (
	"errors"
	"fmt"
)

// ErrMalformed is returned for bytes that are not a well-formed module.
var ErrMalformed = errors.New("malformed WebAssembly binary")

// Section ids.
const (
	SecCustom    = 0
	SecType      = 1
	SecImport    = 2
	SecFunction  = 3
	SecTable     = 4
	SecMemory    = 5
	SecGlobal    = 6
	SecExport    = 7
	SecStart     = 8
	SecElement   = 9
	SecCode      = 10
	SecData      = 11
	SecDataCount = 12
	SecTag       = 13
)

// sectionOrder is the position each known section must take.
var sectionOrder = map[byte]int{
	SecType: 1, SecImport: 2, SecFunction: 3, SecTable: 4, SecMemory: 5, SecTag: 6,
	SecGlobal: 7, SecExport: 8, SecStart: 9, SecElement: 10, SecDataCount: 11, SecCode: 12, SecData: 13,
}

// ValType is a value type.
type ValType byte

const (
	I32       ValType = 0x7f
	I64       ValType = 0x7e
	F32       ValType = 0x7d
	F64       ValType = 0x7c
	V128      ValType = 0x7b
	FuncRef   ValType = 0x70
	ExternRef ValType = 0x6f
)

func (t ValType) String() string {
	switch t {
	case I32:
		return "i32"
	case I64:
		return "i64"
	case F32:
		return "f32"
	case F64:
		return "f64"
	case V128:
		return "v128"
	case FuncRef:
		return "funcref"
	case ExternRef:
		return "externref"
	}
	return fmt.Sprintf("valtype(%#x)", byte(t))
}

// ExternKind is what an import or export is.
type ExternKind byte

const (
	KindFunc   ExternKind = 0
	KindTable  ExternKind = 1
	KindMemory ExternKind = 2
	KindGlobal ExternKind = 3
	KindTag    ExternKind = 4
)

// FuncType is a function signature.
type FuncType struct {
	Params, Results []ValType
}

// Limits are a table's or memory's bounds.
type Limits struct {
	Min, Max uint64
	HasMax   bool
	Shared   bool
	Mem64    bool
}

// Table is a table definition.
type Table struct {
	Elem ValType
	Limits
}

// GlobalType is a global's type and mutability.
type GlobalType struct {
	Type    ValType
	Mutable bool
}

// Global is a global defined by the module. Init is its constant
// initializer, including the final end opcode.
type Global struct {
	GlobalType
	Init []byte
}

// Import is one import; which of the type fields applies depends on Kind.
type Import struct {
	Module, Name string
	Kind         ExternKind
	TypeIndex    uint32 // KindFunc
	Table        Table  // KindTable
	Memory       Limits // KindMemory
	Global       GlobalType
}

// Export is one export.
type Export struct {
	Name  string
	Kind  ExternKind
	Index uint32
}

// Body is one function body: its locals and code, without the size prefix.
type Body struct {
	Raw  []byte
	Code int // offset in Raw of the first instruction
}

// Instructions is the body's expression, ending with its final end.
func (b Body) Instructions() []byte { return b.Raw[b.Code:] }

// Local is one group of a body's local declarations.
type Local struct {
	Count uint32
	Type  ValType
}

// Locals decodes the body's local declarations (Parse has checked them).
func (b Body) Locals() []Local {
	r := &reader{b: b.Raw[:b.Code]}
	var out []Local
	for k := r.count(2); k > 0 && r.err == nil; k-- {
		out = append(out, Local{Count: r.u32(), Type: r.valType()})
	}
	return out
}

// Elem is an element segment. Funcs holds the function index of each
// element (-1 for a null reference, or an element not given as a plain
// ref.func). Offset is meaningful when Active and OffsetKnown.
type Elem struct {
	Active      bool
	Declarative bool
	Table       uint32
	Offset      int64
	OffsetKnown bool
	Funcs       []int64

	// The encoding, kept so that the segment can be written back: the
	// flags (0-7), the element kind or reference type byte (flags&3 != 0),
	// the offset expression of an active segment, and for expression
	// segments (flags&4 != 0) each element's constant expression.
	Flags      uint32
	Kind       byte
	OffsetExpr []byte
	Exprs      [][]byte
}

// Data is a data segment.
type Data struct {
	Active      bool
	Memory      uint32
	Offset      int64
	OffsetKnown bool
	Bytes       []byte
}

// Section is a section as it appears in the binary.
type Section struct {
	ID   byte
	Name string // custom sections only
	Data []byte // contents after the id and size (for custom sections, after the name)
	raw  []byte // the whole section as read, copied when it is not edited
}

// Module is a parsed module. Index spaces count imports first, as the
// binary format does: function i is Imports' i-th function when i <
// NumImportedFuncs, and Funcs[i-NumImportedFuncs] otherwise.
type Module struct {
	Sections []Section

	Types     []FuncType
	Imports   []Import
	Funcs     []uint32 // type index of each defined function
	Tables    []Table
	Memories  []Limits
	Globals   []Global
	Exports   []Export
	Start     *uint32
	Elems     []Elem
	Codes     []Body
	Data      []Data
	DataCount *uint32
	// FuncNames are the names from the "name" custom section, if any.
	FuncNames map[uint32]string

	NumImportedFuncs, NumImportedTables, NumImportedMemories, NumImportedGlobals uint32

	dirty map[byte]bool
}

// NumFuncs is the size of the function index space.
func (m *Module) NumFuncs() uint32 { return m.NumImportedFuncs + uint32(len(m.Funcs)) }

// NumGlobals is the size of the global index space.
func (m *Module) NumGlobals() uint32 { return m.NumImportedGlobals + uint32(len(m.Globals)) }

// FuncType returns the signature of function fi.
func (m *Module) FuncType(fi uint32) (FuncType, error) {
	var ti uint32
	if fi < m.NumImportedFuncs {
		n := uint32(0)
		for _, im := range m.Imports {
			if im.Kind != KindFunc {
				continue
			}
			if n == fi {
				ti = im.TypeIndex
				break
			}
			n++
		}
	} else if fi-m.NumImportedFuncs < uint32(len(m.Funcs)) {
		ti = m.Funcs[fi-m.NumImportedFuncs]
	} else {
		return FuncType{}, fmt.Errorf("%w: function %d out of range", ErrMalformed, fi)
	}
	if ti >= uint32(len(m.Types)) {
		return FuncType{}, fmt.Errorf("%w: type %d out of range", ErrMalformed, ti)
	}
	return m.Types[ti], nil
}

// ImportedFunc returns the import behind function index fi, if it is one.
func (m *Module) ImportedFunc(fi uint32) (Import, bool) {
	n := uint32(0)
	for _, im := range m.Imports {
		if im.Kind != KindFunc {
			continue
		}
		if n == fi {
			return im, true
		}
		n++
	}
	return Import{}, false
}

// FuncIndex returns the function index of the import module.name.
func (m *Module) FuncIndex(module, name string) (uint32, bool) {
	n := uint32(0)
	for _, im := range m.Imports {
		if im.Kind != KindFunc {
			continue
		}
		if im.Module == module && im.Name == name {
			return n, true
		}
		n++
	}
	return 0, false
}

// Body returns the body of defined function fi.
func (m *Module) Body(fi uint32) (Body, error) {
	if fi < m.NumImportedFuncs || fi-m.NumImportedFuncs >= uint32(len(m.Codes)) {
		return Body{}, fmt.Errorf("%w: function %d has no body", ErrMalformed, fi)
	}
	return m.Codes[fi-m.NumImportedFuncs], nil
}

// ExportedFunc returns the function index exported as name.
func (m *Module) ExportedFunc(name string) (uint32, bool) {
	for _, e := range m.Exports {
		if e.Kind == KindFunc && e.Name == name {
			return e.Index, true
		}
	}
	return 0, false
}

// FuncName names function fi for messages: its name-section name or "func[fi]".
func (m *Module) FuncName(fi uint32) string {
	if n, ok := m.FuncNames[fi]; ok {
		return n
	}
	return fmt.Sprintf("func[%d]", fi)
}

// TableSlots maps function indices to the table-0 slots that hold them,
// from active element segments with constant offsets.
func (m *Module) TableSlots() map[uint32][]uint32 {
	slots := map[uint32][]uint32{}
	for _, e := range m.Elems {
		if !e.Active || !e.OffsetKnown || e.Table != 0 {
			continue
		}
		for i, f := range e.Funcs {
			if f >= 0 {
				slots[uint32(f)] = append(slots[uint32(f)], uint32(e.Offset)+uint32(i))
			}
		}
	}
	return slots
}

// AddGlobal appends a global definition and returns its index.
func (m *Module) AddGlobal(g Global) uint32 {
	m.Globals = append(m.Globals, g)
	m.markDirty(SecGlobal)
	return m.NumGlobals() - 1
}

// AddExport appends an export. Export names must be unique.
func (m *Module) AddExport(e Export) error {
	for _, x := range m.Exports {
		if x.Name == e.Name {
			return fmt.Errorf("export %q already exists", e.Name)
		}
	}
	m.Exports = append(m.Exports, e)
	m.markDirty(SecExport)
	return nil
}

// SetBody replaces the body of defined function fi.
func (m *Module) SetBody(fi uint32, b Body) error {
	if fi < m.NumImportedFuncs || fi-m.NumImportedFuncs >= uint32(len(m.Codes)) {
		return fmt.Errorf("function %d has no body", fi)
	}
	m.Codes[fi-m.NumImportedFuncs] = b
	m.markDirty(SecCode)
	return nil
}

func (m *Module) markDirty(id byte) {
	if m.dirty == nil {
		m.dirty = map[byte]bool{}
	}
	m.dirty[id] = true
}
