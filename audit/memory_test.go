package audit

import (
	"context"
	"fmt"
	"testing"
)

func TestMemoryKeepsTheLastRecordsInOrder(t *testing.T) {
	m := NewMemory(3)
	for i := 0; i < 7; i++ {
		_ = m.Emit(context.Background(), &Record{ID: fmt.Sprint(i)})
	}
	got := m.Records()
	if len(got) != 3 || got[0].ID != "4" || got[1].ID != "5" || got[2].ID != "6" {
		t.Fatalf("want records 4,5,6, got %+v", got)
	}
	m.Reset()
	if len(m.Records()) != 0 {
		t.Fatal("Reset kept records")
	}
	u := NewMemory(0)
	for i := 0; i < 5; i++ {
		_ = u.Emit(context.Background(), &Record{ID: fmt.Sprint(i)})
	}
	if len(u.Records()) != 5 {
		t.Fatal("unbounded memory lost records")
	}
}
