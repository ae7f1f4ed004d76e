// Command notification is a host program for workflows/notification/notification.star: it registers
// the Go activities the script calls, starts an embedded worker with stent.Bootstrap,
// runs the workflow and prints its report.
//
//	go run ./workflows/notification u1 u2 u3
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/activities"
)

// User is what fetch_user_data returns.
type User struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

// Report is what generate_report returns.
type Report struct {
	Users     []string `json:"users"`
	Delivered int      `json:"delivered"`
	At        string   `json:"at"`
}

func fetchUserData(ctx context.Context, id string) (User, error) {
	if strings.TrimSpace(id) == "" {
		return User{}, activities.NonRetryable(errors.New("empty user id"))
	}
	return User{ID: id, Name: strings.ToUpper(id[:1]) + id[1:], Email: id + "@example.com"}, nil
}

func sendNotification(ctx context.Context, email, message string) (string, error) {
	info, _ := activities.InfoFromContext(ctx)
	// A real sender would pass info.IdempotencyKey() to the mail provider, so that a
	// retried attempt never sends twice.
	fmt.Fprintf(os.Stderr, "sending %q to %s (key %s)\n", message, email, info.IdempotencyKey())
	return "sent:" + email, nil
}

func generateReport(ctx context.Context, users []string, sent []string) (Report, error) {
	return Report{Users: users, Delivered: len(sent), At: time.Now().UTC().Format(time.RFC3339)}, nil
}

// Register adds the example's activities to an engine (tests reuse it).
func Register(eng *stent.Engine) error {
	return errors.Join(
		eng.Register("fetch_user_data", fetchUserData,
			activities.WithRetry(activities.RetryPolicy{MaxAttempts: 3, InitialDelay: time.Second, BackoffFactor: 2})),
		eng.Register("send_notification", sendNotification),
		eng.Register("generate_report", generateReport),
	)
}

func main() {
	users := os.Args[1:]
	if len(users) == 0 {
		users = []string{"alice", "bob"}
	}
	ctx := context.Background()
	db := os.Getenv("STENT_DB")
	if db == "" {
		db = "stent.db"
	}
	eng, stop, err := stent.Bootstrap(ctx, db, stent.WithWorkerOptions(stent.WorkerOptions{Concurrency: 16}))
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
	if err := Register(eng); err != nil {
		log.Fatal(err)
	}
	res, err := eng.Run(ctx, "workflows/notification/notification.star", []any{users, "Welcome!"})
	if err != nil {
		log.Fatal(err)
	}
	var report Report
	if err := res.Decode(&report); err != nil {
		log.Fatal(err)
	}
	out, _ := json.Marshal(report)
	fmt.Println(string(out))
}
