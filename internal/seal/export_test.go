package seal

// SetBufSize changes a Writer's bufio layer before its first Write, so the
// benchmarks can measure what the layer buys (0: none).
func SetBufSize(w *Writer, n int) { w.bufSize = n }
