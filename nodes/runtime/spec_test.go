package runtime

import (
	"reflect"
	"testing"
)

// A container's own variable overrides a Service's of the same name, at
// the Service's place, as the kubelet's order has it.
func TestLastWins(t *testing.T) {
	got := lastWins([]string{"WEB_SERVICE_HOST=10.0.0.1", "A=1", "WEB_SERVICE_HOST=override", "B=2", "A=3"})
	if want := []string{"WEB_SERVICE_HOST=override", "A=3", "B=2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
