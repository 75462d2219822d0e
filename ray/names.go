package ray

import (
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
)

// Registration names. Every process of a job runs the same binary and
// finds a function, actor class or method by the name it was registered
// under, so names must be unique in the binary and the same in every
// build of it. Without RegisterName they are derived from the code, as
// Temporal's Go SDK does:
//
//   - a function: its full name as the runtime knows it
//     ("main.square", "github.com/you/app/pkg.Square");
//   - an actor class: its instance type's full name ("main.Counter");
//   - a method given as a method expression of the instance type
//     ((*Counter).Inc): the method's name ("Inc"); any other function
//     given as a method: its full name, as for functions.
//
// Closures have runtime names such as "main.init.func1" that change when
// closures are added above them: give them a name with RegisterName.
// Generic functions have one runtime name for all their instantiations
// ("main.Sum[...]") and must be given a name.

// registered remembers where each name was registered, to say so when a
// name is registered twice.
var registered = struct {
	sync.Mutex
	at map[string]string // kind + " " + name -> file:line
}{at: map[string]string{}}

// claim records a registration of name, panicking with both places if
// the name is taken. skip is the user's registering call's frame counted
// from claim (0), as runtime.Caller counts.
func claim(kind, name string, skip int) {
	site := "unknown place"
	if _, file, line, ok := runtime.Caller(skip); ok {
		site = fmt.Sprintf("%s:%d", shortFile(file), line)
	}
	registered.Lock()
	defer registered.Unlock()
	key := kind + " " + name
	if prev, dup := registered.at[key]; dup {
		panic(fmt.Sprintf("ray: %s %q is registered twice, at %s and at %s: names must be unique in the binary; "+
			"give one of them another name with ray.RegisterName", kind, name, prev, site))
	}
	registered.at[key] = site
}

func nilFunc(fn any) bool {
	v := reflect.ValueOf(fn)
	return v.Kind() != reflect.Func || v.IsNil()
}

// funcName is fn's full name as the runtime knows it.
func funcName(fn any) string {
	if nilFunc(fn) {
		return ""
	}
	if f := runtime.FuncForPC(reflect.ValueOf(fn).Pointer()); f != nil {
		return f.Name()
	}
	return ""
}

// regName returns the name to register a function under: the one given
// with RegisterName, else fn's full name. what names the registering call
// for messages ("ray.Func1").
func regName(what string, fn any, opts []RegisterOption) string {
	if nilFunc(fn) {
		panic(fmt.Sprintf("ray: %s: nil function", what))
	}
	o := collect(opts, RegisterOption.applyRegister)
	if o.regName != nil {
		return checkName(what, *o.regName)
	}
	name := funcName(fn)
	if strings.Contains(name, "[...]") {
		panic(fmt.Sprintf("ray: %s: %s is an instance of a generic function, and all its instances share that runtime name: "+
			"give it a name with ray.RegisterName", what, name))
	}
	return checkName(what, name)
}

// className returns the name to register an actor class on instances of
// T under: the one given with RegisterName, else T's full name.
func className[T any](what string, opts []RegisterOption) string {
	o := collect(opts, RegisterOption.applyRegister)
	if o.regName != nil {
		return checkName(what, *o.regName)
	}
	t := reflect.TypeFor[T]()
	if t.Name() == "" {
		panic(fmt.Sprintf("ray: %s: the instance type %s has no name to register the actor class under: "+
			"give the class a name with ray.RegisterName", what, t))
	}
	return checkName(what, typeName(t))
}

// typeName is t's full name: package path, a dot, its name.
func typeName(t reflect.Type) string {
	if t.PkgPath() == "" {
		return t.Name()
	}
	return t.PkgPath() + "." + t.Name()
}

// methodName returns the name to register fn, a method of instances of
// T, under: the one given with RegisterName; the method's name when fn is
// a method expression of T or *T; else fn's full name.
func methodName[T any](what string, fn any, opts []RegisterOption) string {
	o := collect(opts, RegisterOption.applyRegister)
	if o.regName != nil {
		return checkName(what, *o.regName)
	}
	if nilFunc(fn) {
		panic(fmt.Sprintf("ray: %s: nil method", what))
	}
	full := funcName(fn)
	t := reflect.TypeFor[T]()
	if t.Name() != "" {
		// The runtime writes a generic type's arguments as "[...]".
		base := t.Name()
		if i := strings.IndexByte(base, '['); i >= 0 {
			base = base[:i] + "[...]"
		}
		for _, recv := range []string{"(*" + base + ").", base + "."} {
			prefix := t.PkgPath() + "." + recv
			if m, ok := strings.CutPrefix(full, prefix); ok && m != "" && !strings.ContainsAny(m, ".[-") {
				return m
			}
		}
	}
	if strings.Contains(full, "[...]") {
		panic(fmt.Sprintf("ray: %s: %s is an instance of a generic function: give it a name with ray.RegisterName", what, full))
	}
	return checkName(what, full)
}

func checkName(what, name string) string {
	if name == "" {
		panic(fmt.Sprintf("ray: %s: empty registration name", what))
	}
	return name
}
