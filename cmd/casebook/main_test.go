package main

import (
	"testing"

	"casebook/casebook/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
