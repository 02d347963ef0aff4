// Command httpget is the only file of the httpget test image: it fetches a URL and prints the
// response body, so a pod of the runc handler can check that a Service responds. It tries again
// until -timeout passes, because a Service's rules and endpoints take a moment to appear.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	timeout := flag.Duration("timeout", 30*time.Second, "how long to keep trying")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: httpget [-timeout DURATION] URL")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}

	body, err := fetchUntil(flag.Arg(0), *timeout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "httpget: %v\n", err)
		os.Exit(1)
	}
	fmt.Print(body)
}

// fetchUntil fetches url until a 200 response arrives or timeout passes, and returns the body.
func fetchUntil(url string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	for {
		body, err := fetch(ctx, url)
		if err == nil {
			return body, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("GET %s: no 200 response within %s, last error: %w", url, timeout, err)
		case <-time.After(time.Second):
		}
	}
}

func fetch(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("build the request: %w", err)
	}

	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("read the body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return string(body), nil
}
