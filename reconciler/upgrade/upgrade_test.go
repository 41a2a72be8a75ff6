package upgrade_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/upgrade"
)

// component returns a component named x listing versions, oldest first.
func component(versions ...catalog.Version) *catalog.Component {
	c := &catalog.Component{Metadata: catalog.Meta{Name: "x"}}
	c.Spec.Versions = versions
	return c
}

// nextcloudLike: one major version at a time, as Nextcloud's $OC_VersionCanBeUpgradedFrom.
var nextcloudLike = component(
	catalog.Version{Version: "31.0.9"},
	catalog.Version{Version: "32.0.3", From: ">=31.0.0 <32.0.0", Risky: true},
	catalog.Version{Version: "33.0.1", From: ">=32.0.0 <33.0.0", Risky: true, Migrations: []catalog.Migration{
		{Name: "stop-cron", Phase: catalog.PhasePre, Job: "x"},
		{Name: "add-indices", Phase: catalog.PhasePost, Job: "x"},
		{Name: "repair", Phase: catalog.PhasePost, Job: "x"},
	}},
)

func TestPath(t *testing.T) {
	withStone := component(
		catalog.Version{Version: "1.0.0"},
		catalog.Version{Version: "1.1.0", Mandatory: true},
		catalog.Version{Version: "1.2.0"},
		catalog.Version{Version: "2.0.0"},
	)
	cases := []struct {
		name              string
		comp              *catalog.Component
		deployed, target  string
		want              []string // versions of the steps
		wantRisky         []bool
		wantPre, wantPost [][]string
		wantErr           error
		wantErrSubstrings []string
	}{
		{
			name: "three versions, the middle one a stepping stone forced by the constraints",
			comp: nextcloudLike, deployed: "31.0.9", target: "33.0.1",
			want: []string{"32.0.3", "33.0.1"}, wantRisky: []bool{true, true},
			wantPre:  [][]string{nil, {"stop-cron"}},
			wantPost: [][]string{nil, {"add-indices", "repair"}},
		},
		{
			name: "empty target is the newest version",
			comp: nextcloudLike, deployed: "32.0.3", target: "",
			want: []string{"33.0.1"},
		},
		{
			name: "a single step when the constraint admits the deployed version",
			comp: nextcloudLike, deployed: "31.0.9", target: "32.0.3",
			want: []string{"32.0.3"},
		},
		{
			name: "not installed: install the target directly, no path",
			comp: nextcloudLike, deployed: "", target: "33.0.1",
		},
		{
			name: "equal versions: no steps",
			comp: nextcloudLike, deployed: "32.0.3", target: "32.0.3",
		},
		{
			name: "equal as semantic versions: no steps",
			comp: nextcloudLike, deployed: "v32.0.3", target: "32.0.3",
		},
		{
			name: "downgrade refused",
			comp: nextcloudLike, deployed: "33.0.1", target: "32.0.3",
			wantErr:           &upgrade.DowngradeError{Component: "x", Deployed: "33.0.1", Target: "32.0.3"},
			wantErrSubstrings: []string{"downgrade from 33.0.1 to 32.0.3 refused"},
		},
		{
			name: "a deployed version newer than anything listed is a downgrade",
			comp: nextcloudLike, deployed: "34.0.0", target: "",
			wantErr: &upgrade.DowngradeError{Component: "x", Deployed: "34.0.0", Target: "33.0.1"},
		},
		{
			name: "unknown deployed version between listed ones: the constraints decide",
			comp: nextcloudLike, deployed: "31.0.5", target: "33.0.1",
			want: []string{"32.0.3", "33.0.1"},
		},
		{
			name: "unknown deployed version newer than a listed one starts after it",
			comp: nextcloudLike, deployed: "32.0.9", target: "33.0.1",
			want: []string{"33.0.1"},
		},
		{
			name: "unknown deployed version the constraints leave no way out of",
			comp: nextcloudLike, deployed: "30.0.2", target: "33.0.1",
			// 31.0.9 admits any older version: 30.0.2 → 31.0.9 → 32.0.3 → 33.0.1.
			want: []string{"31.0.9", "32.0.3", "33.0.1"},
		},
		{
			name: "unreachable: the stepping stone is missing from the catalog",
			comp: component(
				catalog.Version{Version: "31.0.9"},
				catalog.Version{Version: "33.0.1", From: ">=32.0.0 <33.0.0"},
			),
			deployed: "31.0.9", target: "33.0.1",
			wantErr: &upgrade.NoPathError{Component: "x", Deployed: "31.0.9", Target: "33.0.1",
				Reached: "31.0.9", Next: "33.0.1", From: ">=32.0.0 <33.0.0"},
			wantErrSubstrings: []string{"no upgrade path from 31.0.9 to 33.0.1", `33.0.1 accepts upgrades only from ">=32.0.0 <33.0.0"`, "no listed version in between bridges the gap"},
		},
		{
			name: "unreachable after some steps",
			comp: component(
				catalog.Version{Version: "1.1.0"},
				catalog.Version{Version: "1.2.0", From: ">=1.1.0 <1.2.0"},
				catalog.Version{Version: "3.0.0", From: ">=2.0.0"},
			),
			deployed: "1.0.0", target: "3.0.0",
			wantErr: &upgrade.NoPathError{Component: "x", Deployed: "1.0.0", Target: "3.0.0",
				Reached: "1.2.0", Next: "3.0.0", From: ">=2.0.0"},
			wantErrSubstrings: []string{"the newest reachable is 1.2.0"},
		},
		{
			name: "a mandatory version stops a path crossing it",
			comp: withStone, deployed: "1.0.0", target: "2.0.0",
			want: []string{"1.1.0", "2.0.0"},
		},
		{
			name: "a mandatory version stops a path from an unlisted version too",
			comp: withStone, deployed: "1.0.5", target: "1.2.0",
			want: []string{"1.1.0", "1.2.0"},
		},
		{
			name: "past the mandatory version the path is direct",
			comp: withStone, deployed: "1.1.0", target: "2.0.0",
			want: []string{"2.0.0"},
		},
		{
			name: "the target itself mandatory: one step",
			comp: withStone, deployed: "1.0.0", target: "1.1.0",
			want: []string{"1.1.0"},
		},
		{
			name: "a version reachable only by skipping a mandatory one",
			comp: component(
				catalog.Version{Version: "1.0.0"},
				catalog.Version{Version: "1.1.0", Mandatory: true},
				catalog.Version{Version: "2.0.0", From: "<1.1.0"},
			),
			deployed: "1.0.0", target: "2.0.0",
			wantErr:           &upgrade.SkipError{Component: "x", Deployed: "1.0.0", Target: "2.0.0", Stone: "1.1.0", Next: "2.0.0", From: "<1.1.0"},
			wantErrSubstrings: []string{"it would skip 1.1.0, a mandatory stepping stone"},
		},
		{
			name: "not greedy: the furthest first step would be a dead end",
			comp: component(
				catalog.Version{Version: "1.0.0"},
				catalog.Version{Version: "1.1.0"},
				catalog.Version{Version: "1.2.0"},
				catalog.Version{Version: "2.0.0", From: "=1.1.0"},
			),
			deployed: "1.0.0", target: "2.0.0",
			want: []string{"1.1.0", "2.0.0"},
		},
		{
			name: "fewest steps, the furthest step first among equals",
			comp: component(
				catalog.Version{Version: "1.0.0"},
				catalog.Version{Version: "1.1.0"},
				catalog.Version{Version: "1.2.0"},
				catalog.Version{Version: "2.0.0", From: ">=1.1.0"},
			),
			deployed: "1.0.0", target: "2.0.0",
			want: []string{"1.2.0", "2.0.0"},
		},
		{
			name: "versions without patch numbers compare as semantic versions",
			comp: component(
				catalog.Version{Version: "17.6"},
				catalog.Version{Version: "18.6", From: ">=18.0.0"},
			),
			deployed: "17.6", target: "18.6",
			wantErr: &upgrade.NoPathError{Component: "x", Deployed: "17.6", Target: "18.6", Reached: "17.6", Next: "18.6", From: ">=18.0.0"},
		},
		{
			name: "a minor version within the same major passes a major-only constraint",
			comp: component(
				catalog.Version{Version: "18.6", From: ">=18.0.0"},
			),
			deployed: "18.1", target: "18.6",
			want: []string{"18.6"},
		},
		{
			name: "unknown target",
			comp: nextcloudLike, deployed: "31.0.9", target: "35.0.0",
			wantErr:           &upgrade.UnknownVersionError{Component: "x", Version: "35.0.0", Known: []string{"31.0.9", "32.0.3", "33.0.1"}},
			wantErrSubstrings: []string{`lists no version "35.0.0" (known: 31.0.9, 32.0.3, 33.0.1)`},
		},
		{
			name: "deployed version that is not a version",
			comp: nextcloudLike, deployed: "latest", target: "",
			wantErrSubstrings: []string{"deployed version", `"latest" is not a version`},
		},
		{
			name: "a component without versions has no path",
			comp: component(), deployed: "1.0.0", target: "",
		},
		{
			name: "a component without versions cannot be given a target",
			comp: component(), deployed: "", target: "1.0.0",
			wantErr: &upgrade.UnknownVersionError{Component: "x", Version: "1.0.0"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			steps, err := upgrade.Path(tc.comp, tc.deployed, tc.target)
			if tc.wantErr != nil || tc.wantErrSubstrings != nil {
				if err == nil {
					t.Fatalf("no error; steps %v", versions(steps))
				}
				if tc.wantErr != nil {
					target := reflect.New(reflect.TypeOf(tc.wantErr)) // a **XError for errors.As
					if !errors.As(err, target.Interface()) {
						t.Fatalf("error %T (%v), want %T", err, err, tc.wantErr)
					}
					if got := target.Elem().Interface(); !reflect.DeepEqual(got, tc.wantErr) {
						t.Errorf("error %#v\nwant %#v", got, tc.wantErr)
					}
				}
				for _, s := range append(tc.wantErrSubstrings, "component x") {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q lacks %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := versions(steps); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("steps %v, want %v", got, tc.want)
			}
			for i, s := range steps {
				if tc.wantRisky != nil && s.Risky != tc.wantRisky[i] {
					t.Errorf("step %s: risky %v, want %v", s.Version, s.Risky, tc.wantRisky[i])
				}
				if tc.wantPre != nil && !reflect.DeepEqual(names(s.Pre), tc.wantPre[i]) {
					t.Errorf("step %s: pre %v, want %v", s.Version, names(s.Pre), tc.wantPre[i])
				}
				if tc.wantPost != nil && !reflect.DeepEqual(names(s.Post), tc.wantPost[i]) {
					t.Errorf("step %s: post %v, want %v", s.Version, names(s.Post), tc.wantPost[i])
				}
			}
		})
	}
}

func versions(steps []upgrade.Step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.Version)
	}
	return out
}

func names(ms []catalog.Migration) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}
