package installer

import "testing"

func TestDescribePods(t *testing.T) {
	pods := []PodSandbox{
		{Namespace: "a", Name: "one"},
		{Namespace: "a", Name: "two"},
		{Namespace: "b", Name: "three"},
	}
	tests := []struct {
		limit int
		want  string
	}{
		{limit: 5, want: "a/one, a/two, b/three"},
		{limit: 3, want: "a/one, a/two, b/three"},
		{limit: 2, want: "a/one, a/two and 1 more"},
	}
	for _, tt := range tests {
		if got := DescribePods(pods, tt.limit); got != tt.want {
			t.Errorf("DescribePods(3 pods, %d) = %q, want %q", tt.limit, got, tt.want)
		}
	}
}
