package stenttest_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stent-go/stent/activities"
	"github.com/stent-go/stent/tests/stenttest"
)

type user struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

type report struct {
	Users     []string `json:"users"`
	Delivered int      `json:"delivered"`
}

// TestNotificationWithGoActivities runs the notification example against mocked Go
// activities: the first fetch of each user fails twice, so the example's retry policy
// (1s, then 2s) is exercised in virtual time.
func TestNotificationWithGoActivities(t *testing.T) {
	t.Parallel()
	began := time.Now()
	var fetches, sends atomic.Int64
	env := stenttest.New(t,
		stenttest.Activity("fetch_user_data", func(ctx context.Context, id string) (user, error) {
			fetches.Add(1)
			if info, _ := activities.InfoFromContext(ctx); info.Attempt < 3 {
				return user{}, errors.New("connection reset")
			}
			return user{ID: id, Email: id + "@example.com"}, nil
		}),
		stenttest.Activity("send_notification", func(ctx context.Context, email, message string) (string, error) {
			sends.Add(1)
			if message != "Welcome!" {
				return "", activities.NonRetryable(errors.New("wrong message " + message))
			}
			return "sent:" + email, nil
		}),
		stenttest.Activity("generate_report", func(ctx context.Context, users, sent []string) (report, error) {
			return report{Users: users, Delivered: len(sent)}, nil
		}),
	)

	res := env.Run("workflows/notification/notification.star", []string{"u1", "u2"}, "Welcome!")
	res.AssertValue(report{Users: []string{"u1", "u2"}, Delivered: 2})
	res.AssertHistory(`
		1 started [["u1","u2"],"Welcome!"]
		2 activity_scheduled #1 fetch_user_data ["u1"] retry={"max_attempts":3,"initial_delay_ms":1000,"backoff_factor":2}
		3 activity_attempt_failed #1 fetch_user_data attempt 1 ActivityError: "connection reset"
		4 activity_attempt_failed #1 fetch_user_data attempt 2 ActivityError: "connection reset" @+1s
		5 activity_completed #1 fetch_user_data {"id":"u1","email":"u1@example.com"} @+3s
		6 activity_scheduled #2 fetch_user_data ["u2"] retry={"max_attempts":3,"initial_delay_ms":1000,"backoff_factor":2}
		7 activity_attempt_failed #2 fetch_user_data attempt 1 ActivityError: "connection reset"
		8 activity_attempt_failed #2 fetch_user_data attempt 2 ActivityError: "connection reset" @+4s
		9 activity_completed #2 fetch_user_data {"id":"u2","email":"u2@example.com"} @+6s
		10 activity_scheduled #3 send_notification ["u1@example.com","Welcome!"]
		11 activity_scheduled #4 send_notification ["u2@example.com","Welcome!"]
		12 activity_completed #3 send_notification "sent:u1@example.com"
		13 activity_completed #4 send_notification "sent:u2@example.com"
		14 activity_scheduled #5 generate_report [["u1","u2"],["sent:u1@example.com","sent:u2@example.com"]]
		15 activity_completed #5 generate_report {"users":["u1","u2"],"delivered":2}
		16 completed {"users":["u1","u2"],"delivered":2}
	`)
	if got := res.Logs(); strings.Join(got, "\n") != "sent 2 notifications" {
		t.Errorf("log = %q", got)
	}
	if fetches.Load() != 6 || sends.Load() != 2 {
		t.Errorf("fetch_user_data ran %d times (want 6: three attempts per user), send_notification %d (want 2)", fetches.Load(), sends.Load())
	}
	// Six seconds of retry delays passed in virtual time only.
	if got := env.VirtualClock().Now().Sub(stenttest.DefaultStart); got != 6*time.Second {
		t.Errorf("virtual time advanced by %s, want 6s", got)
	}
	limit := time.Second
	if raceEnabled {
		limit = 10 * time.Second
	}
	if d := time.Since(began); d > limit {
		t.Errorf("the test took %s, want under %s", d, limit)
	}
}

// TestNotificationFailureAfterRetries: a user that never loads fails the workflow after
// the policy's three attempts, with the activity's message.
func TestNotificationFailureAfterRetries(t *testing.T) {
	t.Parallel()
	env := stenttest.New(t, stenttest.CacheSize(0))
	env.Register("fetch_user_data", func(ctx context.Context, id string) (user, error) {
		return user{}, errors.New("database is down")
	})
	env.Register("send_notification", func(ctx context.Context, email, message string) (string, error) { return "", nil })
	env.Register("generate_report", func(ctx context.Context, users, sent []string) (report, error) { return report{}, nil })
	res := env.Run("workflows/notification/notification.star", []string{"u1"}, "Hi")
	res.AssertFailure(`durable: activity "fetch_user_data" failed after 3 attempts: database is down`)
	res.AssertHistory(`
		1 started [["u1"],"Hi"]
		2 activity_scheduled #1 fetch_user_data ["u1"] retry={"max_attempts":3,"initial_delay_ms":1000,"backoff_factor":2}
		3 activity_attempt_failed #1 fetch_user_data attempt 1 ActivityError: "database is down"
		4 activity_attempt_failed #1 fetch_user_data attempt 2 ActivityError: "database is down" @+1s
		5 activity_failed #1 fetch_user_data ActivityError (3 attempts): "database is down" @+3s
		6 failed ActivityError (3 attempts): "workflows/notification/notification.star:10:29: durable: activity \"fetch_user_data\" failed after 3 attempts: database is down"
	`)
}
