package objstore

import "fmt"

// checkAllocator reports an allocator whose free space is not whole again.
func (s *Store) checkAllocator() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.alloc.Stats()
	if st.Used != 0 || st.FreeBlocks != 1 || st.LargestFree != st.Capacity {
		return fmt.Errorf("allocator not whole after everything was freed: %+v", st)
	}
	return nil
}
