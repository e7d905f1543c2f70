package mask_test

import (
	"context"
	"database/sql/driver"
	"fmt"

	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/mask"
)

func Example() {
	e, err := mask.New(&mask.Config{
		Kinds:      map[string]string{"human": mask.Partial},
		Exemptions: []mask.Exemption{{Name: "pii-readers", When: `'pii_reader' in identity.roles`}},
	})
	if err != nil {
		panic(err)
	}
	rs := mask.ResultSet{
		Identity:      identity.Identity{Subject: "sam@example.com", Kind: identity.Human},
		Columns:       []string{"id", "email", "card_number", "notes"},
		DatabaseTypes: []string{"INT8", "TEXT", "TEXT", "TEXT"},
	}
	plan := e.Plan(context.Background(), rs)
	row := []driver.Value{int64(7), "alice@example.com", "4111 1111 1111 1111", "paid with 5555555555554444, thanks"}
	plan.Apply(row)
	fmt.Println(row[0], row[1], row[2], row[3])
	for _, s := range plan.Stats() {
		fmt.Printf("%s: %s by %s (%s), %d cell(s)\n", s.Column, s.Class, s.Rule, s.Strategy, s.Cells)
	}
	// Output:
	// 7 ****@example.com **** **** **** 1111 paid with ************4444, thanks
	// email: email by kinds.human (partial), 1 cell(s)
	// card_number: card by kinds.human (partial), 1 cell(s)
	// notes: card by kinds.human (partial), 1 cell(s)
}

func ExampleFind() {
	text := "Reach me at alice@example.com; my card is 4111-1111-1111-1111, order 4111111111111112."
	for _, f := range mask.Find(text, "US") {
		fmt.Println(f.Detector, text[f.Start:f.End])
	}
	// Output:
	// email alice@example.com
	// card 4111-1111-1111-1111
}
