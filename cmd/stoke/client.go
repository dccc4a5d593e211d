package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// client talks to a running Stoke's admin API.
type client struct {
	base  string
	token string
}

func (c *client) do(method, path string, body io.Reader, header http.Header) (*http.Response, error) {
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Stoke's admin API at %s (is `stoke serve` running? --admin sets the address): %w", c.base, err)
	}
	return resp, nil
}

// getJSON GETs path and decodes the JSON answer into v.
func (c *client) getJSON(path string, v any) error {
	resp, err := c.do("GET", path, nil, nil)
	if err != nil {
		return err
	}
	return decode(resp, v)
}

func decode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return apiError(resp)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// apiError turns an admin API error answer into an error with its message.
func apiError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return errors.New(e.Error)
	}
	return fmt.Errorf("admin API answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
}
