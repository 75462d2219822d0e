package state

import (
	"net/http"
	"strconv"
)

// listMeta is what a list answers besides its rows (Ray's
// ListApiResponse): how many rows the cluster has (total), how many the
// sources returned (num_after_truncation: less than total when a source
// truncated), how many matched the filters (num_filtered; the result has
// at most limit of them), and warnings about missing data.
type listMeta struct {
	Total              int
	NumAfterTruncation int
	NumFiltered        int
	PartialFailure     string   // nodes that did not answer
	Warnings           []string // data known to be incomplete (evicted or dropped task events, …)
}

// flushBytes is how much of a list is buffered before it is written out.
const flushBytes = 256 << 10

// writeList streams {"total":…,"num_after_truncation":…,"num_filtered":…,
// "partial_failure_warning":…,"warnings":[…],"result":[rows…]} to w,
// encoding rows by their column tables in chunks of flushBytes.
func writeList[T any](w http.ResponseWriter, cols []column[T], detail bool, rows []T, m listMeta) error {
	w.Header().Set("Content-Type", "application/json")
	b := make([]byte, 0, flushBytes+4096)
	b = appendMeta(b, m)
	b = append(b, `,"result":[`...)
	for i := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendRow(b, cols, detail, &rows[i])
		if len(b) >= flushBytes {
			if _, err := w.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	b = append(b, "]}\n"...)
	_, err := w.Write(b)
	return err
}

// appendMeta opens the answer's object with its counts and warnings.
func appendMeta(b []byte, m listMeta) []byte {
	b = append(b, `{"total":`...)
	b = strconv.AppendInt(b, int64(m.Total), 10)
	b = append(b, `,"num_after_truncation":`...)
	b = strconv.AppendInt(b, int64(m.NumAfterTruncation), 10)
	b = append(b, `,"num_filtered":`...)
	b = strconv.AppendInt(b, int64(m.NumFiltered), 10)
	b = append(b, `,"partial_failure_warning":`...)
	b = appendJSONString(b, m.PartialFailure)
	b = append(b, `,"warnings":[`...)
	for i, s := range m.Warnings {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// writeOne writes {"result": row} with every column.
func writeOne[T any](w http.ResponseWriter, cols []column[T], row *T) error {
	w.Header().Set("Content-Type", "application/json")
	b := []byte(`{"result":`)
	b = appendRow(b, cols, true, row)
	b = append(b, "}\n"...)
	_, err := w.Write(b)
	return err
}
