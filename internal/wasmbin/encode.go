package wasmbin

import "fmt"

// AppendULEB appends v as unsigned LEB128.
func AppendULEB(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

// AppendSLEB appends v as signed LEB128.
func AppendSLEB(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendName(b []byte, s string) []byte {
	b = AppendULEB(b, uint64(len(s)))
	return append(b, s...)
}

// Encode writes the module. Sections that were not edited are copied from
// the input; edited ones are re-encoded, and a section that did not exist
// (say, exports) is inserted where the format puts it.
func (m *Module) Encode() []byte {
	size := 8
	for _, s := range m.Sections {
		size += len(s.Data) + 16
	}
	out := append(make([]byte, 0, size+1024), header...)
	present := map[byte]bool{}
	for _, s := range m.Sections {
		present[s.ID] = true
	}
	emit := func(id byte, data []byte) []byte {
		out = append(out, id)
		out = AppendULEB(out, uint64(len(data)))
		return append(out, data...)
	}
	// Dirty sections that are missing go before the first section that
	// must follow them.
	missing := func(before int) {
		for _, id := range []byte{SecType, SecImport, SecFunction, SecTable, SecMemory, SecGlobal, SecExport, SecStart, SecElement, SecCode} {
			if m.dirty[id] && !present[id] && sectionOrder[id] < before && (id != SecStart || m.Start != nil) {
				out = emit(id, m.encodeSection(id))
				present[id] = true
			}
		}
	}
	var added []Section
	for _, s := range m.Sections {
		if s.ID != SecCustom {
			missing(sectionOrder[s.ID])
		}
		switch {
		case s.ID == SecCustom && s.raw == nil:
			// New or edited custom sections go last, after sections
			// inserted above: a name section must follow the code it names.
			added = append(added, s)
		case s.ID != SecCustom && m.dirty[s.ID]:
			if s.ID == SecStart && m.Start == nil {
				continue // removed
			}
			out = emit(s.ID, m.encodeSection(s.ID))
		case s.raw != nil:
			// As read: toolchains (Go's linker) pad sizes to fixed-width
			// LEB128, and re-encoding them would change the bytes.
			out = append(out, s.raw...)
		case s.ID == SecCustom:
			out = emit(SecCustom, append(appendName(nil, s.Name), s.Data...))
		default:
			out = emit(s.ID, s.Data)
		}
	}
	missing(1 << 30)
	for _, s := range added {
		out = emit(SecCustom, append(appendName(nil, s.Name), s.Data...))
	}
	return out
}

func (m *Module) encodeSection(id byte) []byte {
	var b []byte
	switch id {
	case SecType:
		b = AppendULEB(b, uint64(len(m.Types)))
		for _, t := range m.Types {
			b = AppendULEB(append(b, 0x60), uint64(len(t.Params)))
			for _, v := range t.Params {
				b = append(b, byte(v))
			}
			b = AppendULEB(b, uint64(len(t.Results)))
			for _, v := range t.Results {
				b = append(b, byte(v))
			}
		}
	case SecImport:
		b = AppendULEB(b, uint64(len(m.Imports)))
		for _, im := range m.Imports {
			b = appendName(appendName(b, im.Module), im.Name)
			b = append(b, byte(im.Kind))
			switch im.Kind {
			case KindFunc:
				b = AppendULEB(b, uint64(im.TypeIndex))
			case KindTable:
				b = appendLimits(append(b, byte(im.Table.Elem)), im.Table.Limits)
			case KindMemory:
				b = appendLimits(b, im.Memory)
			case KindGlobal:
				mut := byte(0)
				if im.Global.Mutable {
					mut = 1
				}
				b = append(b, byte(im.Global.Type), mut)
			case KindTag:
				b = AppendULEB(append(b, 0), uint64(im.TypeIndex))
			}
		}
	case SecFunction:
		b = AppendULEB(b, uint64(len(m.Funcs)))
		for _, t := range m.Funcs {
			b = AppendULEB(b, uint64(t))
		}
	case SecTable:
		b = AppendULEB(b, uint64(len(m.Tables)))
		for _, t := range m.Tables {
			b = appendLimits(append(b, byte(t.Elem)), t.Limits)
		}
	case SecMemory:
		b = AppendULEB(b, uint64(len(m.Memories)))
		for _, l := range m.Memories {
			b = appendLimits(b, l)
		}
	case SecStart:
		b = AppendULEB(b, uint64(*m.Start))
	case SecElement:
		b = AppendULEB(b, uint64(len(m.Elems)))
		for _, e := range m.Elems {
			b = appendElem(b, e)
		}
	case SecGlobal:
		b = AppendULEB(b, uint64(len(m.Globals)))
		for _, g := range m.Globals {
			mut := byte(0)
			if g.Mutable {
				mut = 1
			}
			b = append(b, byte(g.Type), mut)
			b = append(b, g.Init...)
		}
	case SecExport:
		b = AppendULEB(b, uint64(len(m.Exports)))
		for _, e := range m.Exports {
			b = appendName(b, e.Name)
			b = append(b, byte(e.Kind))
			b = AppendULEB(b, uint64(e.Index))
		}
	case SecCode:
		n := 0
		for _, c := range m.Codes {
			n += len(c.Raw) + 5
		}
		b = make([]byte, 0, n+5)
		b = AppendULEB(b, uint64(len(m.Codes)))
		for _, c := range m.Codes {
			b = AppendULEB(b, uint64(len(c.Raw)))
			b = append(b, c.Raw...)
		}
	default:
		panic(fmt.Sprintf("wasmbin: section %d cannot be re-encoded", id))
	}
	return b
}

// ConstI32 is the constant expression i32.const v.
func ConstI32(v int32) []byte { return append(AppendSLEB([]byte{0x41}, int64(v)), 0x0b) }

// ConstI64 is the constant expression i64.const v.
func ConstI64(v int64) []byte { return append(AppendSLEB([]byte{0x42}, v), 0x0b) }
