package wasmbin

import (
	"bytes"
	"fmt"
)

var header = []byte{0, 'a', 's', 'm', 1, 0, 0, 0}

// Parse decodes wasm. It checks the structure tern relies on, not full
// validity: wazero validates a module when it compiles it.
func Parse(wasm []byte) (*Module, error) {
	if len(wasm) < 8 || !bytes.Equal(wasm[:4], header[:4]) {
		return nil, fmt.Errorf("%w: no \\0asm magic", ErrMalformed)
	}
	if !bytes.Equal(wasm[4:8], header[4:]) {
		return nil, fmt.Errorf("%w: binary format version %x, want 1", ErrMalformed, wasm[4:8])
	}
	m := &Module{}
	r := &reader{b: wasm, off: 8}
	last := 0
	for !r.done() {
		start := r.off
		id := r.byte()
		size := r.u32()
		data := r.bytes(uint64(size))
		if r.err != nil {
			return nil, r.err
		}
		sec := Section{ID: id, Data: data, raw: wasm[start:r.off]}
		if id == SecCustom {
			cr := &reader{b: data}
			sec.Name = cr.name()
			if cr.err != nil {
				return nil, fmt.Errorf("custom section name: %w", cr.err)
			}
			sec.Data = data[cr.off:]
		} else {
			pos, ok := sectionOrder[id]
			if !ok {
				return nil, fmt.Errorf("%w: unknown section id %d", ErrMalformed, id)
			}
			if pos <= last {
				return nil, fmt.Errorf("%w: section %d out of order or repeated", ErrMalformed, id)
			}
			last = pos
		}
		m.Sections = append(m.Sections, sec)
		if err := m.decodeSection(sec); err != nil {
			return nil, err
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(m.Funcs) != len(m.Codes) {
		return nil, fmt.Errorf("%w: %d functions declared, %d bodies", ErrMalformed, len(m.Funcs), len(m.Codes))
	}
	return m, nil
}

func (m *Module) decodeSection(sec Section) error {
	r := &reader{b: sec.Data}
	switch sec.ID {
	case SecCustom:
		if sec.Name == "name" {
			// A malformed name section is ignored, as engines do.
			m.FuncNames = decodeFuncNames(sec.Data)
		}
		return nil
	case SecType:
		for n := r.count(3); n > 0 && r.err == nil; n-- {
			if form := r.byte(); form != 0x60 {
				r.fail("type form %#x (only function types are supported)", form)
			}
			var ft FuncType
			for k := r.count(1); k > 0 && r.err == nil; k-- {
				ft.Params = append(ft.Params, r.valType())
			}
			for k := r.count(1); k > 0 && r.err == nil; k-- {
				ft.Results = append(ft.Results, r.valType())
			}
			m.Types = append(m.Types, ft)
		}
	case SecImport:
		for n := r.count(4); n > 0 && r.err == nil; n-- {
			im := Import{Module: r.name(), Name: r.name(), Kind: ExternKind(r.byte())}
			switch im.Kind {
			case KindFunc:
				im.TypeIndex = r.u32()
				m.NumImportedFuncs++
			case KindTable:
				im.Table = Table{Elem: r.valType(), Limits: r.limits()}
				m.NumImportedTables++
			case KindMemory:
				im.Memory = r.limits()
				m.NumImportedMemories++
			case KindGlobal:
				im.Global = GlobalType{Type: r.valType(), Mutable: r.byte() == 1}
				m.NumImportedGlobals++
			case KindTag:
				r.byte()
				im.TypeIndex = r.u32()
			default:
				r.fail("import kind %d", im.Kind)
			}
			m.Imports = append(m.Imports, im)
		}
	case SecFunction:
		for n := r.count(1); n > 0 && r.err == nil; n-- {
			m.Funcs = append(m.Funcs, r.u32())
		}
	case SecTable:
		for n := r.count(2); n > 0 && r.err == nil; n-- {
			m.Tables = append(m.Tables, Table{Elem: r.valType(), Limits: r.limits()})
		}
	case SecMemory:
		for n := r.count(2); n > 0 && r.err == nil; n-- {
			m.Memories = append(m.Memories, r.limits())
		}
	case SecGlobal:
		for n := r.count(3); n > 0 && r.err == nil; n-- {
			g := Global{GlobalType: GlobalType{Type: r.valType(), Mutable: r.byte() == 1}}
			g.Init, _, _ = r.constExpr()
			m.Globals = append(m.Globals, g)
		}
	case SecExport:
		for n := r.count(3); n > 0 && r.err == nil; n-- {
			m.Exports = append(m.Exports, Export{Name: r.name(), Kind: ExternKind(r.byte()), Index: r.u32()})
		}
	case SecStart:
		s := r.u32()
		m.Start = &s
	case SecElement:
		for n := r.count(2); n > 0 && r.err == nil; n-- {
			m.Elems = append(m.Elems, r.elem())
		}
	case SecCode:
		for n := r.count(2); n > 0 && r.err == nil; n-- {
			raw := r.bytes(uint64(r.u32()))
			br := &reader{b: raw}
			for k := br.count(2); k > 0 && br.err == nil; k-- {
				br.u32()
				br.valType()
			}
			if br.err != nil {
				return fmt.Errorf("function body %d locals: %w", len(m.Codes), br.err)
			}
			m.Codes = append(m.Codes, Body{Raw: raw, Code: br.off})
		}
	case SecData:
		for n := r.count(1); n > 0 && r.err == nil; n-- {
			var d Data
			switch flags := r.u32(); flags {
			case 0:
				d.Active = true
				_, d.Offset, d.OffsetKnown = r.constExpr()
			case 1:
			case 2:
				d.Active = true
				d.Memory = r.u32()
				_, d.Offset, d.OffsetKnown = r.constExpr()
			default:
				r.fail("data segment flags %d", flags)
			}
			d.Bytes = r.bytes(uint64(r.u32()))
			m.Data = append(m.Data, d)
		}
	case SecDataCount:
		c := r.u32()
		m.DataCount = &c
	case SecTag:
		return nil
	}
	if r.err == nil && r.off != len(r.b) {
		r.fail("%d trailing bytes", len(r.b)-r.off)
	}
	if r.err != nil {
		return fmt.Errorf("section %d: %w", sec.ID, r.err)
	}
	return nil
}

func (r *reader) elem() Elem {
	flags := r.u32()
	if flags > 7 {
		r.fail("element segment flags %d", flags)
		return Elem{}
	}
	e := Elem{Active: flags&1 == 0, Declarative: flags&3 == 3, Flags: flags}
	if e.Active {
		if flags&2 != 0 {
			e.Table = r.u32()
		}
		e.OffsetExpr, e.Offset, e.OffsetKnown = r.constExpr()
	}
	exprs := flags&4 != 0
	if flags&3 != 0 { // elemkind or reftype
		e.Kind = r.byte()
	}
	for n := r.count(1); n > 0 && r.err == nil; n-- {
		if !exprs {
			e.Funcs = append(e.Funcs, int64(r.u32()))
			continue
		}
		raw, _, _ := r.constExpr()
		e.Exprs = append(e.Exprs, raw)
		f := int64(-1)
		if len(raw) >= 2 && raw[0] == 0xd2 {
			fr := &reader{b: raw[1:]}
			if v := fr.u32(); fr.err == nil && fr.off == len(raw)-2 {
				f = int64(v)
			}
		}
		e.Funcs = append(e.Funcs, f)
	}
	return e
}

// decodeFuncNames reads subsection 1 (function names) of a name section.
func decodeFuncNames(data []byte) map[uint32]string {
	r := &reader{b: data}
	for !r.done() {
		id := r.byte()
		sub := r.bytes(uint64(r.u32()))
		if r.err != nil {
			return nil
		}
		if id != 1 {
			continue
		}
		sr := &reader{b: sub}
		names := map[uint32]string{}
		for n := sr.count(2); n > 0 && sr.err == nil; n-- {
			idx := sr.u32()
			names[idx] = sr.name()
		}
		if sr.err != nil {
			return nil
		}
		return names
	}
	return nil
}

// Producer is one entry of a "producers" custom section field.
type Producer struct{ Name, Version string }

// Producers decodes the contents of a "producers" custom section: field
// name (language, processed-by, sdk) to its entries.
func Producers(data []byte) (map[string][]Producer, error) {
	r := &reader{b: data}
	out := map[string][]Producer{}
	for n := r.count(2); n > 0 && r.err == nil; n-- {
		field := r.name()
		for k := r.count(2); k > 0 && r.err == nil; k-- {
			out[field] = append(out[field], Producer{Name: r.name(), Version: r.name()})
		}
	}
	if r.err == nil && r.off != len(data) {
		r.fail("%d trailing bytes in producers section", len(data)-r.off)
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}
