// Command hello is the example app of Shoal's demo and end-to-end tests: a static HTTP
// server configured by environment variables, with knobs that make it misbehave on purpose.
//
//	LISTEN          address to listen on (default ":" + PORT); "off" serves nothing
//	PORT            port when LISTEN is unset (default 8080)
//	MESSAGE         first words of every answer (default "hello")
//	VERSION         the version answers name; the v1 and v2 images bake it in
//	EXIT_AFTER      exit this long after start (a Go duration) with EXIT_CODE (default 1)
//	ALLOC_MB        allocate and touch this many MiB at start, to exceed a memory limit
//	IGNORE_SIGTERM  "1": ignore SIGTERM, so that only SIGKILL stops it
//	READY_FILE      /readyz answers 200 only while this file exists
//	LOG_EVERY       write a log line this often (a Go duration)
//	UPSTREAM        a URL that / also fetches and shows (the frontend of the two-tier example)
//	SIGTERM_GET     a URL it GETs on SIGTERM before shutting down (lets a test see when
//	                SIGTERM came, e.g. after a preStop hook)
//
// Endpoints: / answers "MESSAGE (version VERSION)"; /healthz is 200 until /fail is
// requested (or SIGUSR1 received) and again after /recover (or SIGUSR2); /readyz is
// /healthz and READY_FILE; /env/NAME answers the value of an environment variable and
// /file?path=P the content of a file (test knobs that let tests see what the container was
// given; never deploy this app with real secrets).
//
// On SIGTERM it logs, stops serving and exits 0.
//
// `hello -check URL` serves nothing: it GETs URL and exits 0 on a status in [200,400), 1
// otherwise, for exec probes. It waits as long as the server takes: the probe's timeout
// bounds it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// config is the app's settings, read from the environment.
type config struct {
	listen        string
	message       string
	version       string
	exitAfter     time.Duration
	exitCode      int
	allocMB       int
	ignoreSIGTERM bool
	readyFile     string
	logEvery      time.Duration
	upstream      string
	sigtermGet    string
}

func main() {
	log.SetFlags(0)
	checkURL := flag.String("check", "", "GET this URL and exit 0 if it answers 2xx or 3xx, 1 otherwise")
	flag.Parse()
	if *checkURL != "" {
		os.Exit(check(http.DefaultClient, *checkURL))
	}
	cfg, err := configFromEnv(os.Getenv)
	if err != nil {
		log.Fatalf("hello: %v", err)
	}
	os.Exit(run(cfg))
}

func configFromEnv(getenv func(string) string) (config, error) {
	cfg := config{
		listen:        getenv("LISTEN"),
		message:       getenv("MESSAGE"),
		version:       getenv("VERSION"),
		exitCode:      1,
		ignoreSIGTERM: getenv("IGNORE_SIGTERM") == "1",
		readyFile:     getenv("READY_FILE"),
		upstream:      getenv("UPSTREAM"),
		sigtermGet:    getenv("SIGTERM_GET"),
	}
	if cfg.listen == "" {
		port := getenv("PORT")
		if port == "" {
			port = "8080"
		}
		cfg.listen = ":" + port
	}
	if cfg.message == "" {
		cfg.message = "hello"
	}
	if cfg.version == "" {
		cfg.version = "dev"
	}
	var errs []error
	parse := func(name string, into func(string) error) {
		if v := getenv(name); v != "" {
			if err := into(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			}
		}
	}
	parse("EXIT_AFTER", func(v string) (err error) { cfg.exitAfter, err = time.ParseDuration(v); return })
	parse("EXIT_CODE", func(v string) (err error) { cfg.exitCode, err = strconv.Atoi(v); return })
	parse("ALLOC_MB", func(v string) (err error) { cfg.allocMB, err = strconv.Atoi(v); return })
	parse("LOG_EVERY", func(v string) (err error) { cfg.logEvery, err = time.ParseDuration(v); return })
	return cfg, errors.Join(errs...)
}

// ballast keeps ALLOC_MB alive so the memory stays charged to the container.
var ballast [][]byte

// check is the -check mode: the exit code says whether url answers with success.
func check(client *http.Client, url string) int {
	resp, err := client.Get(url)
	if err != nil {
		log.Printf("hello: check: %v", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		log.Printf("hello: check: GET %s: %s", url, resp.Status)
		return 1
	}
	return 0
}

func run(cfg config) int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2)
	if cfg.ignoreSIGTERM {
		signal.Ignore(syscall.SIGTERM)
	} else {
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	}
	if cfg.allocMB > 0 {
		for i := 0; i < cfg.allocMB; i++ {
			b := make([]byte, 1<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1 // touch every page, or it is never charged
			}
			ballast = append(ballast, b)
		}
		log.Printf("hello: allocated %d MiB", cfg.allocMB)
	}
	var failing atomic.Bool
	srv := &http.Server{Handler: newHandler(cfg, &failing), ReadHeaderTimeout: 5 * time.Second}
	if cfg.listen == "off" {
		log.Printf("hello: serving nothing (LISTEN=off), version %s", cfg.version)
	} else {
		ln, err := net.Listen("tcp", cfg.listen)
		if err != nil {
			log.Printf("hello: %v", err)
			return 1
		}
		go srv.Serve(ln) // ends when Shutdown or exit is called below
		log.Printf("hello: listening on %s, version %s", ln.Addr(), cfg.version)
	}

	var exit <-chan time.Time
	if cfg.exitAfter > 0 {
		exit = time.After(cfg.exitAfter)
	}
	var tick <-chan time.Time
	if cfg.logEvery > 0 {
		t := time.NewTicker(cfg.logEvery)
		defer t.Stop()
		tick = t.C
	}
	for n := 1; ; n++ {
		select {
		case <-tick:
			log.Printf("hello: tick %d", n)
		case <-exit:
			log.Printf("hello: EXIT_AFTER reached, exiting with %d", cfg.exitCode)
			return cfg.exitCode
		case s := <-sigs:
			if s == syscall.SIGUSR1 || s == syscall.SIGUSR2 {
				failing.Store(s == syscall.SIGUSR1)
				log.Printf("hello: got %v, failing: %v", s, failing.Load())
				continue
			}
			log.Printf("hello: got %v, shutting down", s)
			if cfg.sigtermGet != "" {
				check(&http.Client{Timeout: 2 * time.Second}, cfg.sigtermGet)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				log.Printf("hello: shutdown: %v", err)
			}
			return 0
		}
	}
}

// newHandler serves the endpoints; failing is the health that /fail, /recover and the
// USR signals set.
func newHandler(cfg config, failing *atomic.Bool) http.Handler {
	healthy := func() bool { return !failing.Load() }
	mux := http.NewServeMux()
	client := &http.Client{Timeout: 2 * time.Second}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s (version %s)\n", cfg.message, cfg.version)
		if cfg.upstream == "" {
			return
		}
		// The two-tier example: the frontend calls its backend by its Service name.
		resp, err := client.Get(cfg.upstream)
		if err != nil {
			fmt.Fprintf(w, "-> %s: %v\n", cfg.upstream, err)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		fmt.Fprintf(w, "-> %s: %s", cfg.upstream, body)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		answer(w, healthy())
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ready := healthy()
		if cfg.readyFile != "" {
			_, err := os.Stat(cfg.readyFile)
			ready = ready && err == nil
		}
		answer(w, ready)
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { failing.Store(true) })
	mux.HandleFunc("/recover", func(w http.ResponseWriter, r *http.Request) { failing.Store(false) })
	mux.HandleFunc("/env/{name}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := os.LookupEnv(r.PathValue("name"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, v)
	})
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		// Read, not served with http.ServeFile: the files of /proc (mounts, say) report a
		// size of 0, and ServeFile would answer them empty.
		b, err := os.ReadFile(r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Write(b)
	})
	return mux
}

func answer(w http.ResponseWriter, ok bool) {
	if !ok {
		http.Error(w, "failing", http.StatusInternalServerError)
		return
	}
	fmt.Fprintln(w, "ok")
}
