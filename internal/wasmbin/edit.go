package wasmbin

import (
	"fmt"
	"slices"
)

// AddType returns the index of function type ft, appending it when the
// module has no equal type.
func (m *Module) AddType(ft FuncType) uint32 {
	for i, t := range m.Types {
		if slices.Equal(t.Params, ft.Params) && slices.Equal(t.Results, ft.Results) {
			return uint32(i)
		}
	}
	m.Types = append(m.Types, ft)
	m.markDirty(SecType)
	return uint32(len(m.Types) - 1)
}

// AddFuncImport appends a function import and returns its index. Function
// indices count imports first, so every defined function moves up by one:
// calls, references, exports, the start function, element segments and
// function names are renumbered to match.
func (m *Module) AddFuncImport(module, name string, typeIdx uint32) (uint32, error) {
	idx := m.NumImportedFuncs
	shift := func(f uint32) uint32 {
		if f >= idx {
			return f + 1
		}
		return f
	}
	if err := m.remapFuncs(shift); err != nil {
		return 0, err
	}
	// After the last function import, so that the new import takes index
	// idx in the function index space.
	at := 0
	for i, im := range m.Imports {
		if im.Kind == KindFunc {
			at = i + 1
		}
	}
	m.Imports = slices.Insert(m.Imports, at, Import{Module: module, Name: name, Kind: KindFunc, TypeIndex: typeIdx})
	m.NumImportedFuncs++
	m.markDirty(SecImport)
	return idx, nil
}

// AddFunc appends a defined function and returns its index.
func (m *Module) AddFunc(typeIdx uint32, b Body) uint32 {
	m.Funcs = append(m.Funcs, typeIdx)
	m.Codes = append(m.Codes, b)
	m.markDirty(SecFunction)
	m.markDirty(SecCode)
	return m.NumFuncs() - 1
}

// AddTable appends a table definition and returns its index.
func (m *Module) AddTable(t Table) uint32 {
	m.Tables = append(m.Tables, t)
	m.markDirty(SecTable)
	return m.NumImportedTables + uint32(len(m.Tables)) - 1
}

// AddMemory appends a memory definition.
func (m *Module) AddMemory(l Limits) {
	m.Memories = append(m.Memories, l)
	m.markDirty(SecMemory)
}

// SetMemory replaces the limits of defined memory i.
func (m *Module) SetMemory(i int, l Limits) {
	m.Memories[i] = l
	m.markDirty(SecMemory)
}

// AddElem appends an element segment. Its encoding fields must be set.
func (m *Module) AddElem(e Elem) {
	m.Elems = append(m.Elems, e)
	m.markDirty(SecElement)
}

// RemoveStart drops the start section, returning the start function.
func (m *Module) RemoveStart() (uint32, bool) {
	if m.Start == nil {
		return 0, false
	}
	s := *m.Start
	m.Start = nil
	m.markDirty(SecStart)
	return s, true
}

// SetCustom replaces the custom section name, or appends it.
func (m *Module) SetCustom(name string, data []byte) {
	for i := range m.Sections {
		s := &m.Sections[i]
		if s.ID == SecCustom && s.Name == name {
			s.Data, s.raw = data, nil
			return
		}
	}
	m.Sections = append(m.Sections, Section{ID: SecCustom, Name: name, Data: data})
}

// Custom returns the contents of the first custom section name.
func (m *Module) Custom(name string) ([]byte, bool) {
	for _, s := range m.Sections {
		if s.ID == SecCustom && s.Name == name {
			return s.Data, true
		}
	}
	return nil, false
}

// Rewrite re-encodes code (a function's instructions or a constant
// expression): for each instruction, f appends what replaces it to out
// and returns out; orig is the instruction's bytes.
func Rewrite(code []byte, out []byte, f func(out []byte, in Instr, orig []byte) ([]byte, error)) ([]byte, error) {
	err := Walk(code, func(in Instr) error {
		var err error
		out, err = f(out, in, code[in.Pos:in.End])
		return err
	})
	return out, err
}

// remapFuncs renumbers every reference to a function index.
func (m *Module) remapFuncs(f func(uint32) uint32) error {
	expr := func(code []byte) ([]byte, error) {
		return Rewrite(code, make([]byte, 0, len(code)+2), func(out []byte, in Instr, orig []byte) ([]byte, error) {
			switch in.Op {
			case OpCall, OpReturnCall, OpRefFunc:
				return AppendULEB(append(out, byte(in.Op)), uint64(f(uint32(in.Imm)))), nil
			}
			return append(out, orig...), nil
		})
	}
	for i, b := range m.Codes {
		code, err := expr(b.Instructions())
		if err != nil {
			return fmt.Errorf("function %d: %w", m.NumImportedFuncs+uint32(i), err)
		}
		m.Codes[i] = Body{Raw: append(slices.Clip(b.Raw[:b.Code]), code...), Code: b.Code}
	}
	m.markDirty(SecCode)
	for i := range m.Globals {
		init, err := expr(m.Globals[i].Init)
		if err != nil {
			return fmt.Errorf("global %d: %w", i, err)
		}
		m.Globals[i].Init = init
	}
	m.markDirty(SecGlobal)
	for i := range m.Exports {
		if m.Exports[i].Kind == KindFunc {
			m.Exports[i].Index = f(m.Exports[i].Index)
		}
	}
	m.markDirty(SecExport)
	if m.Start != nil {
		s := f(*m.Start)
		m.Start = &s
		m.markDirty(SecStart)
	}
	for i := range m.Elems {
		e := &m.Elems[i]
		for k, fi := range e.Funcs {
			if fi >= 0 {
				e.Funcs[k] = int64(f(uint32(fi)))
			}
		}
		for k, x := range e.Exprs {
			nx, err := expr(x)
			if err != nil {
				return fmt.Errorf("element segment %d: %w", i, err)
			}
			e.Exprs[k] = nx
		}
	}
	m.markDirty(SecElement)
	if m.FuncNames != nil {
		names := make(map[uint32]string, len(m.FuncNames))
		for fi, n := range m.FuncNames {
			names[f(fi)] = n
		}
		m.FuncNames = names
		m.SetCustom("name", encodeFuncNames(names))
	}
	return nil
}

// SetFuncName names function fi in the name section.
func (m *Module) SetFuncName(fi uint32, name string) {
	if m.FuncNames == nil {
		m.FuncNames = map[uint32]string{}
	}
	m.FuncNames[fi] = name
	m.SetCustom("name", encodeFuncNames(m.FuncNames))
}

// encodeFuncNames writes a name section holding only function names: the
// other subsections (locals, labels) are keyed by indices an edit may have
// changed, and are only for debugging.
func encodeFuncNames(names map[uint32]string) []byte {
	idx := make([]uint32, 0, len(names))
	for fi := range names {
		idx = append(idx, fi)
	}
	slices.Sort(idx)
	sub := AppendULEB(nil, uint64(len(idx)))
	for _, fi := range idx {
		sub = AppendULEB(sub, uint64(fi))
		sub = appendName(sub, names[fi])
	}
	return append(AppendULEB([]byte{1}, uint64(len(sub))), sub...)
}

func appendLimits(b []byte, l Limits) []byte {
	flags := byte(0)
	if l.HasMax {
		flags |= 1
	}
	if l.Shared {
		flags |= 2
	}
	if l.Mem64 {
		flags |= 4
	}
	b = AppendULEB(append(b, flags), l.Min)
	if l.HasMax {
		b = AppendULEB(b, l.Max)
	}
	return b
}

func appendElem(b []byte, e Elem) []byte {
	b = AppendULEB(b, uint64(e.Flags))
	if e.Active {
		if e.Flags&2 != 0 {
			b = AppendULEB(b, uint64(e.Table))
		}
		b = append(b, e.OffsetExpr...)
	}
	if e.Flags&3 != 0 {
		b = append(b, e.Kind)
	}
	if e.Flags&4 != 0 {
		b = AppendULEB(b, uint64(len(e.Exprs)))
		for _, x := range e.Exprs {
			b = append(b, x...)
		}
		return b
	}
	b = AppendULEB(b, uint64(len(e.Funcs)))
	for _, f := range e.Funcs {
		b = AppendULEB(b, uint64(f))
	}
	return b
}
